/** The shapes the simulator answers in: Atlas's ApiError, OAuth's error, and envelope=true. */
import { STATUS_CODES } from 'node:http';

/** What to answer; `body` is JSON (undefined for none). */
export interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body?: unknown;
}

export const reason = (status: number) => STATUS_CODES[status] ?? 'Unknown';

/** An Atlas ApiError, with `x-error-code` as Atlas sends it. */
export function apiError(
  status: number,
  errorCode: string,
  detail: string,
  extra: {
    parameters?: Array<Record<string, unknown>>;
    fields?: Array<{ field: string; description: string }>;
  } = {},
): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json', 'x-error-code': errorCode },
    body: {
      error: status,
      errorCode,
      detail,
      reason: reason(status),
      parameters: extra.parameters ?? [],
      ...(extra.fields && extra.fields.length > 0 && { badRequestDetail: { fields: extra.fields } }),
    },
  };
}

/** An RFC 6749 error of the token and revoke endpoints. */
export function oauthError(status: number, error: string, description: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: { error, error_description: description },
  };
}

/** envelope=true: always 200, the status moved into the body (lists carry it beside results). */
export function envelope(answer: Answer, isList: boolean): Answer {
  const content = answer.body ?? null;
  const body =
    isList && answer.status === 200 && typeof content === 'object'
      ? { ...content, status: answer.status }
      : { status: answer.status, content };
  return {
    status: 200,
    headers: { ...answer.headers, 'content-type': answer.headers['content-type'] ?? 'application/json' },
    body,
  };
}
