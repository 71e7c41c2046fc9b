/**
 * The Admin API: routes a request to its operation in the spec copy, records every problem the
 * request has, then answers as Atlas does, in Atlas's order: authentication, an injected fault,
 * the rate limit, path and media type problems, an unknown project, query and body problems, and
 * finally the operation itself.
 */
import { type Answer, apiError, envelope } from '#test/simulator/answers.ts';
import { DIGEST_REALM } from '#test/simulator/auth.ts';
import { deliver, drop, type Exchange, type SimulatorParts } from '#test/simulator/exchange.ts';
import { faultAnswer } from '#test/simulator/faults.ts';
import { type CreateMode, perform } from '#test/simulator/operations.ts';
import {
  bodyViolations,
  parameterViolations,
  resolveVersion,
  violationAnswer,
} from '#test/simulator/request-checks.ts';

/** Answers a request to /api/atlas/v2/... . */
export async function handleApi(parts: SimulatorParts, exchange: Exchange): Promise<void> {
  const { req, res, record, raw, url } = exchange;
  const { spec, credentials, buckets, projects } = parts;
  const method = req.method ?? 'GET';
  const routed = spec.route(method, url.pathname);
  if (!('operation' in routed)) {
    const detail = routed.pathMatched
      ? `${method} is not allowed on ${url.pathname}.`
      : `No operation at ${url.pathname}.`;
    record.specViolations.push(detail);
    return deliver(
      parts,
      exchange,
      routed.pathMatched
        ? apiError(405, 'METHOD_NOT_ALLOWED', detail)
        : apiError(404, 'RESOURCE_NOT_FOUND', detail),
    );
  }
  const { operation, params } = routed;
  const groupId = params.groupId ?? '';
  record.operation = operation.operation;
  record.groupId = groupId;

  // Every problem is recorded, whatever is answered first.
  const { path: pathProblems, query: queryProblems } = parameterViolations(
    operation,
    params,
    url.searchParams,
  );
  const accept = resolveVersion(req.headers.accept, 'Accept', spec.versions);
  const contentType = operation.requestBody
    ? resolveVersion(req.headers['content-type'], 'Content-Type', spec.versions)
    : undefined;
  const { violations: bodyProblems, body } = bodyViolations(operation, raw);
  const mediaProblems = [
    ...('violation' in accept ? [accept.violation] : []),
    ...(contentType && 'violation' in contentType ? [contentType.violation] : []),
  ];
  const ordered = [...pathProblems, ...mediaProblems, ...queryProblems, ...bodyProblems];
  record.specViolations.push(...ordered.map((v) => v.detail));

  const target = req.url ?? url.pathname;
  const auth = credentials.authenticate(method, target, req.headers.authorization);
  if (!auth.ok) {
    record.auth = auth.challenge ? 'challenge' : auth.scheme === 'none' ? 'none' : auth.scheme;
    if (auth.violation) record.specViolations.push(auth.violation);
    const answer = apiError(
      401,
      'USER_UNAUTHORIZED',
      `Current user is not authorized to perform this action (${auth.reason}).`,
    );
    answer.headers['www-authenticate'] = auth.challenge
      ? credentials.challenge(auth.challenge.stale)
      : `Bearer realm="${DIGEST_REALM}", error="invalid_token"`;
    return deliver(parts, exchange, answer);
  }
  record.auth = auth.scheme;

  const fault = parts.faults.take(operation.operation, groupId);
  if (fault?.kind === 'reset') return drop(exchange);
  if (fault?.kind === 'delay') await parts.pause(fault.ms);
  if (fault?.kind === 'status') return deliver(parts, exchange, faultAnswer(fault, false));
  const lost = fault?.kind === 'lostResponse';
  const pretty = url.searchParams.get('pretty') === 'true';

  const rateHeaders: Record<string, number> = {};
  if (buckets && pathProblems.length === 0) {
    const taken = buckets.take(groupId);
    rateHeaders['ratelimit-limit'] = taken.limit;
    rateHeaders['ratelimit-remaining'] = taken.remaining;
    if (!taken.allowed) {
      const answer = apiError(
        429,
        'RATE_LIMITED',
        'You have exceeded the rate limit for this project; retry later.',
      );
      Object.assign(answer.headers, rateHeaders, { 'retry-after': taken.retryAfterSeconds });
      return deliver(parts, exchange, answer, { lost, pretty });
    }
  }
  const withRate = (answer: Answer): Answer => ({
    ...answer,
    headers: { ...answer.headers, ...rateHeaders },
  });

  const first = [...pathProblems, ...mediaProblems][0];
  if (first) return deliver(parts, exchange, withRate(violationAnswer(first, ordered)), { lost, pretty });
  if (projects && !projects.has(groupId)) {
    const answer = apiError(404, 'GROUP_NOT_FOUND', `No group with ID ${groupId} exists.`, {
      parameters: [{ groupId }],
    });
    return deliver(parts, exchange, withRate(answer), { lost, pretty });
  }
  const rest = [...queryProblems, ...bodyProblems][0];
  if (rest) return deliver(parts, exchange, withRate(violationAnswer(rest, ordered)), { lost, pretty });

  const version = 'version' in accept ? accept.version : (spec.versions.at(-1) ?? '');
  const mode: CreateMode =
    fault?.kind === 'lateCreate'
      ? { kind: 'late', landAt: record.at + fault.landAfterMs, res }
      : fault?.kind === 'doubleCreate'
        ? { kind: 'double' }
        : fault?.kind === 'recreate'
          ? { kind: 'recreate', plan: { activeMs: fault.activeMs, pendingMs: fault.pendingMs } }
          : { kind: 'normal' };
  const performed = perform(
    parts,
    operation,
    groupId,
    params.endpointId,
    url.searchParams,
    body,
    version,
    mode,
  );
  // A late create answers nothing: its socket is destroyed when it lands (or by the client giving up).
  if (performed === 'held') return;
  let answer = withRate(performed);
  if (url.searchParams.get('envelope') === 'true') answer = envelope(answer, operation.operation === 'list');
  return deliver(parts, exchange, answer, { lost, pretty });
}
