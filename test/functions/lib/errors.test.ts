import { describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasNetworkError,
  ConflictUnresolvedError,
  CredentialsError,
  describeFailure,
  InvalidRequestError,
  KeyBusyError,
  ProfileNotAllowedError,
} from '#lib/errors.ts';

const atlas = (status: number, extra: Partial<{ errorCode: string; retryAfterSeconds: number }> = {}) =>
  new AtlasApiError({ status, errorCode: extra.errorCode ?? `E${status}`, operation: 'create', ...extra });

describe('describeFailure', () => {
  it.each([429, 500, 502, 503, 504])('retries an Atlas %i', (status) => {
    expect(describeFailure(atlas(status)).disposition).toBe('retry');
  });

  it.each([401, 403, 406, 410])('parks an Atlas %i in the DLQ for an operator', (status) => {
    expect(describeFailure(atlas(status)).disposition).toBe('dlq');
  });

  it.each([301, 302, 303, 307, 308])(
    'parks an Atlas %i redirect in the DLQ: the base URL is wrong',
    (status) => {
      expect(describeFailure(atlas(status, { errorCode: 'REDIRECT_REFUSED' }))).toMatchObject({
        disposition: 'dlq',
        code: 'REDIRECT_REFUSED',
        httpStatus: status,
      });
    },
  );

  it.each([400, 404])('rejects an Atlas %i, which no replay can fix', (status) => {
    expect(describeFailure(atlas(status)).disposition).toBe('reject');
  });

  it.each([400, 404])(
    'parks a %i from the OAuth token endpoint, which only an operator can fix',
    (status) => {
      const error = new AtlasApiError({ status, errorCode: 'invalid_request', operation: 'token' });
      expect(describeFailure(error).disposition).toBe('dlq');
    },
  );

  it('retries a rate-limited token request', () => {
    const error = new AtlasApiError({ status: 429, errorCode: 'RATE_LIMITED', operation: 'token' });
    expect(describeFailure(error).disposition).toBe('retry');
  });

  it('retries an Atlas status it does not know rather than acknowledging it', () => {
    expect(describeFailure(atlas(418)).disposition).toBe('retry');
  });

  it('keeps the status, errorCode and Retry-After of an Atlas error', () => {
    expect(describeFailure(atlas(429, { errorCode: 'RATE_LIMITED', retryAfterSeconds: 7 }))).toEqual({
      disposition: 'retry',
      code: 'RATE_LIMITED',
      httpStatus: 429,
      detail: 'Atlas create failed: 429 RATE_LIMITED',
      retryAfterSeconds: 7,
    });
  });

  it('retries network errors and timeouts with distinct codes', () => {
    expect(describeFailure(new AtlasNetworkError('list', 'timeout'))).toMatchObject({
      disposition: 'retry',
      code: 'ATLAS_TIMEOUT',
    });
    expect(describeFailure(new AtlasNetworkError('list', 'network'))).toMatchObject({
      disposition: 'retry',
      code: 'ATLAS_UNREACHABLE',
    });
  });

  it('rejects invalid requests and profiles the deployment does not allow', () => {
    expect(describeFailure(new InvalidRequestError(['groupId: bad']))).toEqual({
      disposition: 'reject',
      code: 'INVALID_REQUEST',
      detail: 'groupId: bad',
    });
    expect(describeFailure(new ProfileNotAllowedError('ops')).disposition).toBe('reject');
  });

  it('parks secret problems an operator must fix, and retries an unavailable Secrets Manager', () => {
    const error = (code: CredentialsError['code']) =>
      new CredentialsError('x', 'cfn/atlas/profile/default', code);
    expect(describeFailure(error('SECRET_NOT_FOUND')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_MALFORMED')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_ACCESS_DENIED')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_UNAVAILABLE')).disposition).toBe('retry');
  });

  it('retries a busy key and an unresolved 409', () => {
    expect(describeFailure(new KeyBusyError('k')).code).toBe('KEY_BUSY');
    expect(describeFailure(new KeyBusyError('k', 90)).retryAfterSeconds).toBe(90);
    expect(describeFailure(new ConflictUnresolvedError('k'))).toMatchObject({
      disposition: 'retry',
      httpStatus: 409,
    });
  });

  it('retries anything it does not recognise, never acknowledging it', () => {
    expect(describeFailure(new TypeError('boom'))).toEqual({
      disposition: 'retry',
      code: 'INTERNAL_ERROR',
      detail: 'TypeError: boom',
    });
    expect(describeFailure('a string').disposition).toBe('retry');
  });
});
