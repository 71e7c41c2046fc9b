/**
 * The project's typed errors, and the one place that decides what happens to a request
 * that failed: retry it later, park it in the dead-letter queue for an operator, or reject it.
 */
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';

/**
 * retry: deliver the record again after a delay (counts as an attempt); wait: the request is
 * fine but must wait (a create in doubt settling, a FAILED endpoint going, another worker holding
 * the key, too little of the invocation left, an AWS service of ours throttling or down), sent
 * again later as a new message so waiting never spends attempts (bounded by maxWaits instead);
 * dlq: an operator must act; reject: never.
 */
export type Disposition = 'retry' | 'wait' | 'dlq' | 'reject';

/** What the queues, the ledger, the events and the logs record about a failure. Never holds a secret. */
export interface FailureInfo {
  disposition: Disposition;
  /** Stable machine-readable code, e.g. RATE_LIMITED, INVALID_REQUEST, ATLAS_UNAVAILABLE. */
  code: string;
  /** HTTP status from Atlas when there was one. */
  httpStatus?: number;
  /** Human-readable reason naming what is wrong. */
  detail: string;
  /**
   * Seconds Atlas asked us to wait (Retry-After), or that a wait needs, when known. A wait without
   * it backs off with the request's waits (an outage of our own services).
   */
  retryAfterSeconds?: number;
  /**
   * The call may have been carried out although no answer said so (a timeout, a reset
   * connection, a lost response, a 5xx). For a create this means the create is in doubt.
   */
  outcomeUnknown?: boolean;
}

export class ProvisionerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProvisionerError';
  }
}

/** The message body is not a valid v1 request. `issues` name each field and problem. */
export class InvalidRequestError extends ProvisionerError {
  readonly issues: string[];
  readonly requestId?: string;
  constructor(issues: string[], requestId?: string, options?: ErrorOptions) {
    super(`invalid request: ${issues.join('; ')}`, options);
    this.name = 'InvalidRequestError';
    this.issues = issues;
    this.requestId = requestId;
  }
}

/** The request names a credentials profile this deployment does not allow. */
export class ProfileNotAllowedError extends ProvisionerError {
  constructor(readonly profile: string) {
    super(`profile "${profile}" is not in this deployment's allowed profiles`);
    this.name = 'ProfileNotAllowedError';
  }
}

/** The key is bound to another profile: its endpoint was made with it, and only it may change it. */
export class ProfileMismatchError extends ProvisionerError {
  constructor(
    readonly key: string,
    readonly boundProfile: string,
    readonly profile: string,
  ) {
    super(
      `the endpoint of ${key} was made with profile "${boundProfile}": a request for it with profile "${profile}" is refused (send it with "${boundProfile}", or delete the endpoint with "${boundProfile}" first)`,
    );
    this.name = 'ProfileMismatchError';
  }
}

/** The request is outside its requester's grant (project, profile or action): `reason` names the requester and what the grant lacks. */
export class NotAuthorizedError extends ProvisionerError {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'NotAuthorizedError';
  }
}

/**
 * The message did not come on a channel that names its requester (a queue of no requester, a
 * continuation naming none), or carries an attribute reserved to the provisioner's own messages.
 */
export class UntrustedMessageError extends ProvisionerError {
  constructor(reason: string) {
    super(reason);
    this.name = 'UntrustedMessageError';
  }
}

/**
 * The profile's secret is missing, not readable by this function, not JSON, or has neither key
 * pair (all for an operator to fix), or Secrets Manager is unavailable just now (retried).
 * Names the secret, never its values.
 */
export class CredentialsError extends ProvisionerError {
  constructor(
    message: string,
    readonly secretName: string,
    readonly code: 'SECRET_NOT_FOUND' | 'SECRET_ACCESS_DENIED' | 'SECRET_MALFORMED' | 'SECRET_UNAVAILABLE',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CredentialsError';
  }
}

/** A non-2xx answer from the Atlas Admin API (ApiError body) or its OAuth endpoints. */
export class AtlasApiError extends ProvisionerError {
  readonly status: number;
  readonly errorCode: string;
  readonly detail?: string;
  readonly retryAfterSeconds?: number;
  /** Which call failed: 'token' and 'revoke' are the OAuth endpoints, the rest the API. */
  readonly operation: string;
  constructor(
    init: {
      status: number;
      errorCode: string;
      detail?: string;
      retryAfterSeconds?: number;
      operation: string;
    },
    options?: ErrorOptions,
  ) {
    super(
      `Atlas ${init.operation} failed: ${init.status} ${init.errorCode}${init.detail ? `: ${init.detail}` : ''}`,
      options,
    );
    this.name = 'AtlasApiError';
    this.status = init.status;
    this.errorCode = init.errorCode;
    this.detail = init.detail;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.operation = init.operation;
  }
}

/**
 * The errorCode Atlas answers a call on one backup private endpoint with when that endpoint does
 * not exist: the operations' documented 404 (the spec's `notFound` response). A missing project
 * answers GROUP_NOT_FOUND instead (../shared/atlas/API.md).
 */
export const ENDPOINT_NOT_FOUND = 'RESOURCE_NOT_FOUND';

/**
 * Whether Atlas said the endpoint itself does not exist: the only answer that means "gone". It
 * must come from a call on the endpoint (get, delete): a RESOURCE_NOT_FOUND to a list or a create
 * is about the project or the route. Any other 404 (a missing project, another code, a body that
 * is not Atlas's, as from a profile pointed at another Atlas) is for an operator (describeFailure).
 */
export function isEndpointNotFound(error: unknown): error is AtlasApiError {
  return (
    error instanceof AtlasApiError &&
    error.status === 404 &&
    error.errorCode === ENDPOINT_NOT_FOUND &&
    (error.operation === 'get' || error.operation === 'delete')
  );
}

/** The errorCode Atlas answers a call in a project that does not exist with (../shared/atlas/API.md). */
export const PROJECT_NOT_FOUND = 'GROUP_NOT_FOUND';

/**
 * Whether Atlas said the project itself does not exist, answering the listing of its endpoints:
 * a 404 with GROUP_NOT_FOUND. Only the listing (the call on the project) counts; the status
 * checker retires a project's keys once two listings some minutes apart said so.
 */
export function isProjectNotFound(error: unknown): error is AtlasApiError {
  return (
    error instanceof AtlasApiError &&
    error.status === 404 &&
    error.errorCode === PROJECT_NOT_FOUND &&
    error.operation === 'list'
  );
}

/** Atlas could not be reached: connection refused or reset, DNS, TLS, or the request timed out. */
export class AtlasNetworkError extends ProvisionerError {
  constructor(
    readonly operation: string,
    readonly reason: 'timeout' | 'network',
    options?: ErrorOptions,
  ) {
    super(
      `Atlas ${operation} failed: ${reason === 'timeout' ? 'request timed out' : 'network error'}`,
      options,
    );
    this.name = 'AtlasNetworkError';
  }
}

/** Another worker holds the lease on this natural key; try again shortly. */
export class KeyBusyError extends ProvisionerError {
  /** Seconds until the other worker's lease runs out, when known: the retry waits that long. */
  readonly retryAfterSeconds?: number;
  constructor(
    readonly key: string,
    retryAfterSeconds?: number,
  ) {
    super(`another worker is processing ${key}`);
    this.name = 'KeyBusyError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Atlas answered 409 on create but listing found no endpoint to adopt; the conflict should clear. */
export class ConflictUnresolvedError extends ProvisionerError {
  constructor(readonly key: string) {
    super(`Atlas answered 409 for ${key} but no matching endpoint was listed`);
    this.name = 'ConflictUnresolvedError';
  }
}

/**
 * A create for this key was sent and its outcome is not known yet; no create is sent again
 * until a listing taken after the settle period decides it.
 */
export class CreateInDoubtError extends ProvisionerError {
  constructor(
    readonly key: string,
    readonly waitSeconds: number,
  ) {
    super(
      `a create for ${key} is in doubt; it is listed again in ${waitSeconds} s before anything is created`,
    );
    this.name = 'CreateInDoubtError';
  }
}

/** The key's FAILED endpoint was deleted to be created anew; the request waits for it to go. */
export class EndpointRecreatingError extends ProvisionerError {
  constructor(
    readonly key: string,
    readonly waitSeconds: number,
  ) {
    super(`the FAILED endpoint of ${key} is being deleted to be created anew`);
    this.name = 'EndpointRecreatingError';
  }
}

/** Atlas reported the key's endpoint FAILED more often than the bound allows: an operator decides. */
export class EndpointFailedError extends ProvisionerError {
  constructor(
    readonly key: string,
    readonly failures: number,
    readonly atlasErrorMessage: string | undefined,
    within?: string,
  ) {
    super(
      `the endpoint of ${key} FAILED ${failures} time(s)${within ? ` ${within}` : ''}, the most this deployment recreates: ${atlasErrorMessage ?? 'Atlas gave no errorMessage'}`,
    );
    this.name = 'EndpointFailedError';
  }
}

/**
 * The request has waited maxWaits times and the key has no endpoint: a create sent now could not
 * wait out its own doubt, so none is sent and an operator decides (replaying starts the count anew).
 */
export class WaitsExhaustedError extends ProvisionerError {
  constructor(
    readonly key: string,
    readonly waits: number,
  ) {
    super(
      `the request for ${key} has waited ${waits} time(s), the most this deployment allows, and the key has no endpoint: no create is sent whose outcome it could not wait for`,
    );
    this.name = 'WaitsExhaustedError';
  }
}

/** Too little of the invocation is left to start this record or this Atlas call. */
export class DeadlineError extends ProvisionerError {
  constructor(readonly what: string) {
    super(`not enough of the invocation left to ${what}`);
    this.name = 'DeadlineError';
  }
}

/** The key's outbox is full because EventBridge has refused its events; new facts wait for it. */
export class EventsBackloggedError extends ProvisionerError {
  constructor(readonly key: string) {
    super(`status events of ${key} are waiting for EventBridge; the request waits with them`);
    this.name = 'EventsBackloggedError';
  }
}

/** Seconds a record deferred for lack of time (or for a busy key whose lease is not known) waits. */
export const DEADLINE_RETRY_SECONDS = 2;

// A 404 that reaches here is not an endpoint found gone (isEndpointNotFound, read where it is
// met): a project that does not exist, or credentials pointed at another Atlas. No replay of the
// request fixes it, but an operator can, and Atlas's code and detail go with it.
const OPERATOR_STATUSES = new Set([401, 403, 404, 406, 410]);
const REJECT_STATUSES = new Set([400]);

/**
 * The single decision of what a failure means. Anything not recognised is retried:
 * a request is never acknowledged on a failure we do not understand.
 */
export function describeFailure(error: unknown): FailureInfo {
  if (error instanceof InvalidRequestError) {
    return { disposition: 'reject', code: 'INVALID_REQUEST', detail: error.issues.join('; ') };
  }
  if (error instanceof ProfileNotAllowedError) {
    return { disposition: 'reject', code: 'PROFILE_NOT_ALLOWED', detail: error.message };
  }
  if (error instanceof NotAuthorizedError) {
    return { disposition: 'reject', code: 'NOT_AUTHORIZED', detail: error.reason };
  }
  if (error instanceof UntrustedMessageError) {
    return { disposition: 'reject', code: 'UNTRUSTED_MESSAGE', detail: error.message };
  }
  if (error instanceof ProfileMismatchError) {
    return { disposition: 'reject', code: 'PROFILE_MISMATCH', detail: error.message };
  }
  // Secrets Manager throttling or down: nothing is wrong with the request, so, as for our other
  // AWS services, it waits the outage out without spending attempts.
  if (error instanceof CredentialsError) {
    return {
      disposition: error.code === 'SECRET_UNAVAILABLE' ? 'wait' : 'dlq',
      code: error.code,
      detail: error.message,
    };
  }
  if (error instanceof AtlasApiError) {
    const base = {
      code: error.errorCode,
      httpStatus: error.status,
      detail: error.detail ?? error.message,
      ...(error.retryAfterSeconds !== undefined && { retryAfterSeconds: error.retryAfterSeconds }),
    };
    // A redirect is never followed: the base URL points somewhere else, for an operator to fix.
    if (error.status >= 300 && error.status < 400) return { disposition: 'dlq', ...base };
    if (error.status === 429) return { disposition: 'retry', ...base };
    if (error.status >= 500) return { disposition: 'retry', outcomeUnknown: true, ...base };
    if (OPERATOR_STATUSES.has(error.status)) return { disposition: 'dlq', ...base };
    // A 4xx from the token endpoint is about the credentials or the base URL, not the request.
    if (error.operation === 'token') return { disposition: 'dlq', ...base };
    if (REJECT_STATUSES.has(error.status)) return { disposition: 'reject', ...base };
    return { disposition: 'retry', ...base };
  }
  if (error instanceof AtlasNetworkError) {
    return {
      disposition: 'retry',
      code: error.reason === 'timeout' ? 'ATLAS_TIMEOUT' : 'ATLAS_UNREACHABLE',
      detail: error.message,
      outcomeUnknown: true,
    };
  }
  // Another worker holding the key, or too little of the invocation left: nothing is wrong with
  // the request or with Atlas, so it waits (a new message later) and spends none of its attempts.
  if (error instanceof KeyBusyError) {
    return {
      disposition: 'wait',
      code: 'KEY_BUSY',
      detail: error.message,
      retryAfterSeconds: error.retryAfterSeconds ?? DEADLINE_RETRY_SECONDS,
    };
  }
  if (error instanceof CreateInDoubtError) {
    return {
      disposition: 'wait',
      code: 'CREATE_IN_DOUBT',
      detail: error.message,
      retryAfterSeconds: error.waitSeconds,
    };
  }
  if (error instanceof EndpointRecreatingError) {
    return {
      disposition: 'wait',
      code: 'ENDPOINT_RECREATING',
      detail: error.message,
      retryAfterSeconds: error.waitSeconds,
    };
  }
  if (error instanceof EndpointFailedError) {
    return { disposition: 'dlq', code: 'ENDPOINT_FAILED', detail: error.message };
  }
  if (error instanceof WaitsExhaustedError) {
    return { disposition: 'dlq', code: 'WAITS_EXHAUSTED', detail: error.message };
  }
  if (error instanceof DeadlineError) {
    return {
      disposition: 'wait',
      code: 'DEADLINE',
      detail: error.message,
      retryAfterSeconds: DEADLINE_RETRY_SECONDS,
    };
  }
  if (error instanceof EventsBackloggedError) {
    return { disposition: 'wait', code: 'EVENTS_BACKLOGGED', detail: error.message };
  }
  if (error instanceof ConflictUnresolvedError) {
    return { disposition: 'retry', code: 'CONFLICT_UNRESOLVED', httpStatus: 409, detail: error.message };
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (isAwsOutage(error)) {
    return {
      disposition: 'wait',
      code: 'DEPENDENCY_UNAVAILABLE',
      detail: `an AWS service the provisioner uses is throttling or unavailable (${message.slice(0, 400)})`,
    };
  }
  return { disposition: 'retry', code: 'INTERNAL_ERROR', detail: message.slice(0, 500) };
}

/**
 * An AWS SDK error that says the service is throttling, failing on its side, or out of reach,
 * as the SDK's own retry strategy classifies it (after its own retries gave up): DynamoDB,
 * SQS or EventBridge down. Not an error in what we asked (a 4xx such as a failed condition or a
 * denied permission), which stays a retry and ends in the DLQ.
 */
function isAwsOutage(error: unknown): boolean {
  if (!(error instanceof Error) || !('$metadata' in error)) return false;
  const sdkError = error as Parameters<typeof isThrottlingError>[0];
  return isThrottlingError(sdkError) || isTransientError(sdkError) || isServerError(sdkError);
}
