import {
  ConditionalCheckFailedException,
  InternalServerError,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  AtlasApiError,
  AtlasNetworkError,
  ConflictUnresolvedError,
  CreateInDoubtError,
  CredentialsError,
  DEADLINE_RETRY_SECONDS,
  DeadlineError,
  describeFailure,
  EndpointFailedError,
  EndpointRecreatingError,
  EventsBackloggedError,
  type FailureInfo,
  InvalidRequestError,
  isEndpointNotFound,
  KeyBusyError,
  ProfileNotAllowedError,
  ProvisionerError,
  WaitsExhaustedError,
} from '#lib/errors.ts';

const atlas = (status: number, extra: Partial<{ errorCode: string; retryAfterSeconds: number }> = {}) =>
  new AtlasApiError({ status, errorCode: extra.errorCode ?? `E${status}`, operation: 'create', ...extra });

describe('describeFailure', () => {
  it.each([429, 500, 502, 503, 504])('retries an Atlas %i', (status) => {
    expect(describeFailure(atlas(status)).disposition).toBe('retry');
  });

  it.each([500, 503, 599])(
    'marks the outcome of a call that met an Atlas %i unknown: a create may exist',
    (status) => {
      expect(describeFailure(atlas(status))).toEqual({
        disposition: 'retry',
        outcomeUnknown: true,
        code: `E${status}`,
        httpStatus: status,
        detail: `Atlas create failed: ${status} E${status}`,
      });
    },
  );

  it.each([429, 418, 499])(
    'knows the outcome of a call Atlas refused with a %i: nothing was done',
    (status) => {
      expect(describeFailure(atlas(status))).not.toHaveProperty('outcomeUnknown');
    },
  );

  it.each([401, 403, 406, 410])('parks an Atlas %i in the DLQ for an operator', (status) => {
    expect(describeFailure(atlas(status)).disposition).toBe('dlq');
  });

  it.each([300, 301, 302, 303, 307, 308, 399])(
    'parks an Atlas %i redirect in the DLQ: the base URL is wrong',
    (status) => {
      expect(describeFailure(atlas(status, { errorCode: 'REDIRECT_REFUSED' }))).toMatchObject({
        disposition: 'dlq',
        code: 'REDIRECT_REFUSED',
        httpStatus: status,
      });
    },
  );

  it('rejects an Atlas 400, which no replay can fix', () => {
    expect(describeFailure(atlas(400)).disposition).toBe('reject');
  });

  it.each([
    ['a project that does not exist', 'GROUP_NOT_FOUND', 'No group with ID 5f1e2d3c4b5a69788796a5b4 exists.'],
    ['a route this Atlas does not know (another environment)', 'RESOURCE_NOT_FOUND', 'Cannot find resource.'],
    ['a code this version does not know', 'SOMETHING_NEW_NOT_FOUND', 'new'],
  ])('parks an Atlas 404 for %s for an operator, with its code and detail', (_what, errorCode, detail) => {
    const error = new AtlasApiError({ status: 404, errorCode, detail, operation: 'list' });
    expect(describeFailure(error)).toEqual({ disposition: 'dlq', code: errorCode, httpStatus: 404, detail });
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

  it.each([405, 409, 418, 422, 499])(
    'retries an Atlas %i it does not know rather than acknowledging it',
    (status) => {
      expect(describeFailure(atlas(status)).disposition).toBe('retry');
    },
  );

  it('retries a 2xx answer whose body is not what the spec promises', () => {
    const error = new AtlasApiError({ status: 200, errorCode: 'INVALID_RESPONSE', operation: 'list' });
    expect(describeFailure(error)).toMatchObject({ disposition: 'retry', httpStatus: 200 });
  });

  it('takes the detail Atlas gave over the error message', () => {
    const error = new AtlasApiError({
      status: 400,
      errorCode: 'INVALID_ATTRIBUTE',
      detail: 'Invalid attribute regionName specified.',
      operation: 'create',
    });

    expect(error.message).toBe(
      'Atlas create failed: 400 INVALID_ATTRIBUTE: Invalid attribute regionName specified.',
    );
    expect(describeFailure(error)).toEqual({
      disposition: 'reject',
      code: 'INVALID_ATTRIBUTE',
      httpStatus: 400,
      detail: 'Invalid attribute regionName specified.',
    });
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

  it('rejects invalid requests, naming every issue, and profiles the deployment does not allow', () => {
    expect(describeFailure(new InvalidRequestError(['groupId: bad', 'regionName: bad']))).toEqual({
      disposition: 'reject',
      code: 'INVALID_REQUEST',
      detail: 'groupId: bad; regionName: bad',
    });
    expect(describeFailure(new ProfileNotAllowedError('ops')).disposition).toBe('reject');
  });

  it('parks secret problems an operator must fix, and waits out an unavailable Secrets Manager', () => {
    const error = (code: CredentialsError['code']) =>
      new CredentialsError('x', 'cfn/atlas/profile/default', code);
    expect(describeFailure(error('SECRET_NOT_FOUND')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_MALFORMED')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_ACCESS_DENIED')).disposition).toBe('dlq');
    expect(describeFailure(error('SECRET_UNAVAILABLE')).disposition).toBe('wait');
  });

  it('waits out a busy key (for the lease when it is known, else shortly), and retries an unresolved 409', () => {
    expect(describeFailure(new KeyBusyError('k'))).toEqual({
      disposition: 'wait',
      code: 'KEY_BUSY',
      detail: 'another worker is processing k',
      retryAfterSeconds: DEADLINE_RETRY_SECONDS,
    });
    expect(describeFailure(new KeyBusyError('k', 90)).retryAfterSeconds).toBe(90);
    expect(describeFailure(new ConflictUnresolvedError('k'))).toMatchObject({
      disposition: 'retry',
      httpStatus: 409,
    });
  });

  // What each failure becomes: the disposition decides retry / wait / DLQ / reject, and the code
  // and detail are what the DLQ attributes, the rejected event and the logs show.
  it.each<[string, () => unknown, FailureInfo]>([
    [
      'a profile the deployment does not allow',
      () => new ProfileNotAllowedError('ops'),
      {
        disposition: 'reject',
        code: 'PROFILE_NOT_ALLOWED',
        detail: `profile "ops" is not in this deployment's allowed profiles`,
      },
    ],
    [
      'a secret that is not there',
      () =>
        new CredentialsError(
          'secret cfn/atlas/profile/x not found',
          'cfn/atlas/profile/x',
          'SECRET_NOT_FOUND',
        ),
      { disposition: 'dlq', code: 'SECRET_NOT_FOUND', detail: 'secret cfn/atlas/profile/x not found' },
    ],
    [
      'an unavailable Secrets Manager',
      () => new CredentialsError('throttled', 'cfn/atlas/profile/x', 'SECRET_UNAVAILABLE'),
      { disposition: 'wait', code: 'SECRET_UNAVAILABLE', detail: 'throttled' },
    ],
    [
      'a timeout',
      () => new AtlasNetworkError('list', 'timeout'),
      {
        disposition: 'retry',
        code: 'ATLAS_TIMEOUT',
        detail: 'Atlas list failed: request timed out',
        outcomeUnknown: true,
      },
    ],
    [
      'an unreachable Atlas',
      () => new AtlasNetworkError('create', 'network'),
      {
        disposition: 'retry',
        code: 'ATLAS_UNREACHABLE',
        detail: 'Atlas create failed: network error',
        outcomeUnknown: true,
      },
    ],
    [
      'a create in doubt, which waits without spending an attempt',
      () => new CreateInDoubtError('k', 45),
      {
        disposition: 'wait',
        code: 'CREATE_IN_DOUBT',
        detail: 'a create for k is in doubt; it is listed again in 45 s before anything is created',
        retryAfterSeconds: 45,
      },
    ],
    [
      'a FAILED endpoint being recreated, which waits too',
      () => new EndpointRecreatingError('k', 30),
      {
        disposition: 'wait',
        code: 'ENDPOINT_RECREATING',
        detail: 'the FAILED endpoint of k is being deleted to be created anew',
        retryAfterSeconds: 30,
      },
    ],
    [
      'an endpoint that FAILED too often, for an operator',
      () => new EndpointFailedError('k', 3, 'bucket policy denies access'),
      {
        disposition: 'dlq',
        code: 'ENDPOINT_FAILED',
        detail:
          'the endpoint of k FAILED 3 time(s), the most this deployment recreates: bucket policy denies access',
      },
    ],
    [
      'an endpoint that FAILED without a reason from Atlas',
      () => new EndpointFailedError('k', 1, undefined),
      {
        disposition: 'dlq',
        code: 'ENDPOINT_FAILED',
        detail:
          'the endpoint of k FAILED 1 time(s), the most this deployment recreates: Atlas gave no errorMessage',
      },
    ],
    [
      'no wait left for a create',
      () => new WaitsExhaustedError('k', 60),
      {
        disposition: 'dlq',
        code: 'WAITS_EXHAUSTED',
        detail:
          'the request for k has waited 60 time(s), the most this deployment allows, and the key has no endpoint: no create is sent whose outcome it could not wait for',
      },
    ],
    [
      'too little of the invocation left',
      () => new DeadlineError('start k'),
      {
        disposition: 'wait',
        code: 'DEADLINE',
        detail: 'not enough of the invocation left to start k',
        retryAfterSeconds: DEADLINE_RETRY_SECONDS,
      },
    ],
    [
      'a full outbox',
      () => new EventsBackloggedError('k'),
      {
        disposition: 'wait',
        code: 'EVENTS_BACKLOGGED',
        detail: 'status events of k are waiting for EventBridge; the request waits with them',
      },
    ],
    [
      'a 409 with nothing to adopt',
      () => new ConflictUnresolvedError('k'),
      {
        disposition: 'retry',
        code: 'CONFLICT_UNRESOLVED',
        httpStatus: 409,
        detail: 'Atlas answered 409 for k but no matching endpoint was listed',
      },
    ],
    [
      'an error of its own it has no rule for',
      () => new ProvisionerError('odd'),
      { disposition: 'retry', code: 'INTERNAL_ERROR', detail: 'ProvisionerError: odd' },
    ],
  ])('describes %s', (_, error, expected) => {
    expect(describeFailure(error())).toEqual(expected);
  });

  // Our own AWS services throttling or down (after the SDK's own retries): the request is fine,
  // so it waits the outage out as new messages, spending none of its attempts.
  it.each<[string, () => Error]>([
    [
      'a DynamoDB throttle',
      () =>
        new ProvisionedThroughputExceededException({
          message: 'rate exceeded',
          $metadata: { httpStatusCode: 400, attempts: 3 },
        }),
    ],
    [
      'a DynamoDB 500',
      () => new InternalServerError({ message: 'internal', $metadata: { httpStatusCode: 500 } }),
    ],
    [
      'an SQS or EventBridge 503',
      () =>
        Object.assign(new Error('unavailable'), {
          name: 'ServiceUnavailable',
          $metadata: { httpStatusCode: 503 },
        }),
    ],
    [
      'a connection the SDK could not make',
      () =>
        Object.assign(new Error('connect ECONNREFUSED'), {
          code: 'ECONNREFUSED',
          $metadata: { attempts: 3 },
        }),
    ],
  ])('waits out %s as DEPENDENCY_UNAVAILABLE, naming the error', (_, error) => {
    const failure = describeFailure(error());
    expect(failure).toMatchObject({ disposition: 'wait', code: 'DEPENDENCY_UNAVAILABLE' });
    expect(failure.detail).toContain(error().name);
    // Its length comes from the request's waits (failure.ts), not from the failure.
    expect(failure.retryAfterSeconds).toBeUndefined();
    expect(failure.outcomeUnknown).toBeUndefined();
  });

  it('still retries an AWS error in what we asked, or one without the SDK marks', () => {
    const failed = new ConditionalCheckFailedException({
      message: 'failed',
      $metadata: { httpStatusCode: 400 },
    });
    const denied = Object.assign(new Error('not authorized'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    const bare = Object.assign(new Error('throttled?'), { name: 'ThrottlingException' });
    for (const error of [failed, denied, bare]) {
      expect(describeFailure(error)).toMatchObject({ disposition: 'retry', code: 'INTERNAL_ERROR' });
    }
  });

  it('retries anything it does not recognise, never acknowledging it', () => {
    expect(describeFailure(new TypeError('boom'))).toEqual({
      disposition: 'retry',
      code: 'INTERNAL_ERROR',
      detail: 'TypeError: boom',
    });
    expect(describeFailure('a string')).toEqual({
      disposition: 'retry',
      code: 'INTERNAL_ERROR',
      detail: 'a string',
    });
  });

  it('cuts the detail of an unknown error to 500 characters', () => {
    expect(describeFailure(new Error('x'.repeat(2_000))).detail).toBe(`Error: ${'x'.repeat(493)}`);
  });
});

describe('the errors', () => {
  it.each([
    () => new ProvisionerError('m'),
    () => new InvalidRequestError(['a']),
    () => new ProfileNotAllowedError('p'),
    () => new CredentialsError('m', 's', 'SECRET_MALFORMED'),
    () => new AtlasApiError({ status: 500, errorCode: 'E', operation: 'list' }),
    () => new AtlasNetworkError('list', 'timeout'),
    () => new KeyBusyError('k'),
    () => new ConflictUnresolvedError('k'),
    () => new CreateInDoubtError('k', 1),
    () => new EndpointRecreatingError('k', 1),
    () => new EndpointFailedError('k', 1, undefined),
    () => new DeadlineError('x'),
    () => new EventsBackloggedError('k'),
  ])('name themselves in logs by their class (%#)', (make) => {
    const error = make();
    expect(error.name).toBe(error.constructor.name);
  });

  it('keep the error they wrap as the cause', () => {
    const cause = new Error('socket hang up');
    expect(new AtlasNetworkError('list', 'network', { cause }).cause).toBe(cause);
  });

  it('name every issue of an invalid request in its message', () => {
    const error = new InvalidRequestError(['groupId: bad', 'regionName: bad'], 'req-1');
    expect(error.message).toBe('invalid request: groupId: bad; regionName: bad');
    expect(error.requestId).toBe('req-1');
  });
});

describe('isEndpointNotFound', () => {
  const notFound = (errorCode: string, operation: string, status = 404) =>
    new AtlasApiError({ status, errorCode, detail: 'Atlas said so', operation });

  it.each(['get', 'delete'])(
    'reads a RESOURCE_NOT_FOUND to a %s of the endpoint as the endpoint gone',
    (op) => {
      expect(isEndpointNotFound(notFound('RESOURCE_NOT_FOUND', op))).toBe(true);
    },
  );

  it.each([
    ['a missing project', notFound('GROUP_NOT_FOUND', 'delete')],
    ['a missing project, on a get', notFound('GROUP_NOT_FOUND', 'get')],
    ['a code this version does not know', notFound('NOT_FOUND', 'get')],
    ['a 404 whose body is not Atlas', notFound('HTTP_404', 'delete')],
    [
      'a RESOURCE_NOT_FOUND to a list: the project or route, not an endpoint',
      notFound('RESOURCE_NOT_FOUND', 'list'),
    ],
    ['a RESOURCE_NOT_FOUND to a create', notFound('RESOURCE_NOT_FOUND', 'create')],
    ['the code with another status', notFound('RESOURCE_NOT_FOUND', 'get', 410)],
    ['another error', new Error('RESOURCE_NOT_FOUND')],
  ])('never reads %s as the endpoint gone', (_what, error) => {
    expect(isEndpointNotFound(error)).toBe(false);
  });
});
