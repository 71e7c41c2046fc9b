/**
 * One HTTP round trip to Atlas: timeout, metrics hook, network errors, and the mapping of a
 * non-2xx answer to AtlasApiError. Shared by the API calls and the OAuth token endpoint.
 */
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';

export const USER_AGENT = 'atlas-backup-private-endpoints/0.1';

export type AtlasOperation = 'list' | 'create' | 'get' | 'delete' | 'token' | 'revoke';

/** What the onCall metrics hook receives, once per HTTP round trip. */
export interface AtlasCallInfo {
  operation: AtlasOperation;
  /** Absent when no answer arrived (network error or timeout). */
  status?: number;
  durationMs: number;
  rateLimitRemaining?: number;
}

export interface HttpRequest {
  operation: AtlasOperation;
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Ends the request early (the invocation's deadline); the client's own timeout applies too. */
  signal?: AbortSignal;
}

/** An answer with its body already read, so a reset mid-body is a network error too. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
}

export interface AtlasHttpOptions {
  fetch: typeof fetch;
  timeoutMs: number;
  now: () => number;
  onCall?: (info: AtlasCallInfo) => void;
}

/** Sends one request and reads its answer; network failures become AtlasNetworkError. */
export class AtlasHttp {
  readonly #o: AtlasHttpOptions;

  constructor(options: AtlasHttpOptions) {
    this.#o = options;
  }

  get now(): () => number {
    return this.#o.now;
  }

  /** Never follows a redirect: a 3xx fails with AtlasApiError REDIRECT_REFUSED. */
  async send(request: HttpRequest): Promise<HttpAnswer> {
    const answer = await this.#roundTrip(request);
    if (isRedirect(answer.status)) throw redirectRefused(request.operation, answer);
    return answer;
  }

  async #roundTrip(request: HttpRequest): Promise<HttpAnswer> {
    const started = this.#o.now();
    let status: number | undefined;
    let rateLimitRemaining: number | undefined;
    try {
      const response = await this.#o.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined && { body: request.body }),
        // Following one would resend the credentials and the body wherever the Location says.
        redirect: 'manual',
        signal: request.signal
          ? AbortSignal.any([AbortSignal.timeout(this.#o.timeoutMs), request.signal])
          : AbortSignal.timeout(this.#o.timeoutMs),
      });
      status = response.status;
      rateLimitRemaining = parseNonNegativeInt(response.headers.get('ratelimit-remaining'));
      const body = await response.text();
      return { status: response.status, headers: response.headers, body };
    } catch (error) {
      throw new AtlasNetworkError(request.operation, isTimeout(error) ? 'timeout' : 'network', {
        cause: error,
      });
    } finally {
      this.#o.onCall?.({
        operation: request.operation,
        ...(status !== undefined && { status }),
        durationMs: this.#o.now() - started,
        ...(rateLimitRemaining !== undefined && { rateLimitRemaining }),
      });
    }
  }
}

const isTimeout = (error: unknown) =>
  error instanceof Error &&
  (error.name === 'TimeoutError' || (error.cause instanceof Error && error.cause.name === 'TimeoutError'));

const parseNonNegativeInt = (value: string | null) =>
  value !== null && /^\s*\d+\s*$/.test(value) ? Number.parseInt(value, 10) : undefined;

export const isSuccess = (status: number) => status >= 200 && status < 300;

export const isRedirect = (status: number) => status >= 300 && status < 400;

/** A 3xx: Atlas's API and OAuth endpoints never redirect, so the base URL is wrong. */
function redirectRefused(operation: AtlasOperation, answer: HttpAnswer): AtlasApiError {
  let target = 'elsewhere';
  try {
    // Only the origin: a path or query could hold anything.
    target = new URL(answer.headers.get('location') ?? '').origin;
  } catch {}
  return new AtlasApiError({
    status: answer.status,
    errorCode: 'REDIRECT_REFUSED',
    detail: `Atlas answered ${answer.status} redirecting to ${target}; redirects are not followed (check the base URL)`,
    operation,
  });
}

/** Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  const seconds = parseNonNegativeInt(text);
  if (seconds !== undefined) return seconds;
  // Only something shaped like a date: Date.parse also accepts bare numbers such as "1.5".
  if (!/[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * Atlas's texts in an error are kept this long at most: the detail and the errorCode (also
 * taken from a header or an OAuth `error`) reach the ledger's lastError, the DLQ's and the
 * rejected queue's events and attributes, and the error's message.
 */
export const MAX_DETAIL = 500;
export const MAX_ERROR_CODE = 128;

const text = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? value : undefined);

function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function fieldViolations(body: Record<string, unknown>): string | undefined {
  const badRequest = body.badRequestDetail;
  if (typeof badRequest !== 'object' || badRequest === null) return undefined;
  const fields = (badRequest as { fields?: unknown }).fields;
  if (!Array.isArray(fields)) return undefined;
  const named = fields
    .map((f: unknown) => {
      if (typeof f !== 'object' || f === null) return undefined;
      const { field, description } = f as { field?: unknown; description?: unknown };
      return text(field) && text(description) ? `${field}: ${description}` : undefined;
    })
    .filter((f) => f !== undefined);
  return named.length > 0 ? named.join('; ') : undefined;
}

/** Maps a non-2xx answer (ApiError, OAuth error, empty or non-JSON body) to AtlasApiError. */
export function toApiError(operation: AtlasOperation, answer: HttpAnswer, nowMs: number): AtlasApiError {
  const body = parseJsonObject(answer.body) ?? {};
  const errorCode = (
    text(body.errorCode) ??
    text(answer.headers.get('x-error-code')) ??
    text(body.error) ??
    `HTTP_${answer.status}`
  ).slice(0, MAX_ERROR_CODE);
  const described = text(body.detail) ?? text(body.reason) ?? text(body.error_description);
  const fields = fieldViolations(body);
  const detail = [described, fields].filter((d) => d !== undefined).join(' ') || undefined;
  const retryAfterSeconds = parseRetryAfter(answer.headers.get('retry-after'), nowMs);
  return new AtlasApiError({
    status: answer.status,
    errorCode,
    ...(detail !== undefined && { detail: detail.slice(0, MAX_DETAIL) }),
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
    operation,
  });
}

/** A 2xx answer whose body is not what the spec promises. */
export function invalidResponse(
  operation: AtlasOperation,
  answer: HttpAnswer,
  problem: string,
): AtlasApiError {
  return new AtlasApiError({
    status: answer.status,
    errorCode: 'INVALID_RESPONSE',
    detail: problem.slice(0, MAX_DETAIL),
    operation,
  });
}
