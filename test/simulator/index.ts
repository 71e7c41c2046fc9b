/**
 * The Atlas simulator: a node:http server on 127.0.0.1 speaking the four backup private endpoint
 * operations, OAuth client credentials and Digest like Atlas, validating every request against the
 * official spec copy (test/simulator/) and recording what it found.
 *
 * Status codes chosen where Atlas documents none or contradicts itself:
 * - 406 NOT_ACCEPTABLE: Accept names no `application/vnd.atlas.YYYY-MM-DD+json` media type.
 * - 406 INVALID_VERSION_DATE: the date is malformed or older than the oldest version in the spec; a later
 *   date resolves to the newest version on or before it (2024-11-13).
 * - 415 UNSUPPORTED_MEDIA_TYPE: a create whose Content-Type is not the versioned media type.
 * - 400 INVALID_PARAMETER (path or query value against its schema, unknown query parameter),
 *   INVALID_ENUM_VALUE (cloudProvider, regionName, vpcRegionName), INVALID_ATTRIBUTE (unknown body field:
 *   Atlas rejects unknown fields), MISSING_ATTRIBUTE (cloudProvider and regionName, documented as required),
 *   INVALID_JSON, VALIDATION_ERROR (any other body problem, including a missing body).
 * - 409 BACKUP_PRIVATE_ENDPOINT_ALREADY_EXISTS (invented: Atlas documents no code for it).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CreateEndpointBody } from '#atlas/types.ts';
import { Credentials, DIGEST_REALM } from '#test/simulator/auth.ts';
import { EndpointStore } from '#test/simulator/endpoints.ts';
import { CREATE_ONLY_FAULTS, parseFaultRule } from '#test/simulator/fault-schema.ts';
import { checkProbability, seededRandom } from '#test/simulator/random.ts';
import { TokenBuckets } from '#test/simulator/rate-limit.ts';
import { loadAtlasSpec, type SchemaProblem, type SpecOperation } from '#test/simulator/spec.ts';
import type {
  AtlasSimulator,
  FaultRule,
  RecordedRequest,
  SimOperation,
  SimulatorOptions,
} from '#test/simulator/types.ts';

export type * from '#test/simulator/types.ts';

const MAX_BODY_BYTES = 1024 * 1024;
const OAUTH_FORM = 'application/x-www-form-urlencoded';
const ATLAS_MEDIA_TYPE = /^application\/vnd\.atlas\.([^+]*)\+json$/;
const FAULT_ERROR_CODES: Record<number, string> = {
  400: 'VALIDATION_ERROR',
  401: 'USER_UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'RESOURCE_NOT_FOUND',
  409: 'CONFLICT',
  429: 'RATE_LIMITED',
  500: 'UNEXPECTED_ERROR',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};
const OAUTH_ERRORS: Record<number, string> = {
  400: 'invalid_request',
  401: 'invalid_client',
  403: 'access_denied',
  429: 'slow_down',
  503: 'temporarily_unavailable',
};

/** What to answer; `body` is JSON (undefined for none). */
interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body?: unknown;
}

/** A request that breaks the spec (or Atlas's documented rules), and the error Atlas answers it with. */
interface Violation {
  status: number;
  errorCode: string;
  detail: string;
  parameters?: Array<Record<string, unknown>>;
  /** Set for body problems: listed in badRequestDetail.fields. */
  field?: string;
}

const reason = (status: number) => STATUS_CODES[status] ?? 'Unknown';

function apiError(
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

function violationAnswer(first: Violation, all: Violation[]): Answer {
  const fields = all.flatMap((v) =>
    v.status === first.status && v.field !== undefined ? [{ field: v.field, description: v.detail }] : [],
  );
  return apiError(first.status, first.errorCode, first.detail, {
    ...(first.parameters && { parameters: first.parameters }),
    fields,
  });
}

function oauthError(status: number, error: string, description: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: { error, error_description: description },
  };
}

/** The resource version an Accept or Content-Type value resolves to, or the violation it is. */
function resolveVersion(
  header: string | undefined,
  name: 'Accept' | 'Content-Type',
  versions: string[],
): { version: string } | { violation: Violation } {
  const notAcceptable = name === 'Accept' ? 406 : 415;
  const types = (header ?? '')
    .split(',')
    .map((t) => t.split(';')[0]?.trim().toLowerCase() ?? '')
    .filter(Boolean);
  const dates = types.flatMap((t) => {
    const m = ATLAS_MEDIA_TYPE.exec(t);
    return m ? [m[1] ?? ''] : [];
  });
  if (dates.length === 0) {
    return {
      violation: {
        status: notAcceptable,
        errorCode: name === 'Accept' ? 'NOT_ACCEPTABLE' : 'UNSUPPORTED_MEDIA_TYPE',
        detail: `${name} ${header ? `"${header}" names` : 'is missing, so it names'} no versioned media type application/vnd.atlas.YYYY-MM-DD+json.`,
        parameters: [{ [name]: header ?? null }],
      },
    };
  }
  for (const date of dates) {
    const parsed = new Date(`${date}T00:00:00Z`);
    const valid =
      /^\d{4}-\d{2}-\d{2}$/.test(date) &&
      !Number.isNaN(parsed.getTime()) &&
      parsed.toISOString().startsWith(date);
    const version = valid ? versions.filter((v) => v <= date).at(-1) : undefined;
    if (version) return { version };
  }
  return {
    violation: {
      status: notAcceptable,
      errorCode: name === 'Accept' ? 'INVALID_VERSION_DATE' : 'UNSUPPORTED_MEDIA_TYPE',
      detail: `${name} version ${dates.join(', ')} is not a date on or after ${versions[0]}, the oldest resource version.`,
      parameters: [{ [name]: header ?? null }],
    },
  };
}

/** Path and query parameters checked against their schemas; unknown query parameters too. */
function parameterViolations(
  operation: SpecOperation,
  params: Record<string, string>,
  query: URLSearchParams,
) {
  const toViolation = (p: SchemaProblem, value: string): Violation => ({
    status: 400,
    errorCode: p.keyword === 'enum' ? 'INVALID_ENUM_VALUE' : 'INVALID_PARAMETER',
    detail: `Invalid ${p.field} "${value}": ${p.message}.`,
    parameters: [{ [p.field]: value }],
  });
  const path: Violation[] = [];
  const queryProblems: Violation[] = [];
  for (const param of operation.parameters) {
    const value = param.in === 'path' ? params[param.name] : (query.get(param.name) ?? undefined);
    if (value === undefined) continue;
    (param.in === 'path' ? path : queryProblems).push(
      ...param.check(value).map((p) => toViolation(p, value)),
    );
  }
  const declared = operation.parameters.filter((p) => p.in === 'query').map((p) => p.name);
  for (const name of new Set(query.keys())) {
    if (declared.includes(name)) continue;
    queryProblems.push({
      status: 400,
      errorCode: 'INVALID_PARAMETER',
      detail: `Unknown query parameter ${name}: ${operation.operationId} takes ${declared.join(', ')}.`,
      parameters: [{ [name]: query.get(name) }],
    });
  }
  return { path, query: queryProblems };
}

function bodyViolations(operation: SpecOperation, raw: Buffer): { violations: Violation[]; body?: unknown } {
  const spec = operation.requestBody;
  if (!spec) return { violations: [] };
  if (raw.length === 0) {
    return spec.required
      ? {
          violations: [
            {
              status: 400,
              errorCode: 'VALIDATION_ERROR',
              detail: 'The request body is required.',
              field: 'body',
            },
          ],
        }
      : { violations: [] };
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    return {
      violations: [
        {
          status: 400,
          errorCode: 'INVALID_JSON',
          detail: `The request body is not valid JSON: ${(error as Error).message}.`,
          field: 'body',
        },
      ],
    };
  }
  const violations: Violation[] = spec.check(body).map((p) => ({
    status: 400,
    errorCode:
      p.keyword === 'enum'
        ? 'INVALID_ENUM_VALUE'
        : p.keyword === 'additionalProperties'
          ? 'INVALID_ATTRIBUTE'
          : 'VALIDATION_ERROR',
    detail:
      p.keyword === 'additionalProperties' ? `Invalid attribute ${p.field} specified.` : `${p.message}.`,
    parameters: [{ field: p.field }],
    field: p.field,
  }));
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    for (const field of ['cloudProvider', 'regionName']) {
      if (!(field in body)) {
        violations.push({
          status: 400,
          errorCode: 'MISSING_ATTRIBUTE',
          detail: `The required attribute ${field} was not specified.`,
          parameters: [{ field }],
          field,
        });
      }
    }
  }
  return { violations, body };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const DEFAULT_RATE_LIMIT = { capacity: 1200, refillPerMinute: 500 };

/** How perform() carries out a create: as asked, twice (doubleCreate), or later (lateCreate). */
type CreateMode =
  | { kind: 'normal' }
  | { kind: 'double' }
  | { kind: 'late'; landAt: number; res: ServerResponse };

/** A lateCreate waiting to land. */
interface Landing {
  timer: NodeJS.Timeout;
  res: ServerResponse;
}

/** Starts the simulator on 127.0.0.1 (a free port unless `port` is set). */
export async function startAtlasSimulator(options: SimulatorOptions = {}): Promise<AtlasSimulator> {
  const spec = await loadAtlasSpec();
  const credentials = new Credentials({
    tokenTtlSeconds: options.tokenTtlSeconds ?? 3600,
    nonceTtlMs: options.nonceTtlMs ?? 60_000,
  });
  for (const { clientId, clientSecret } of options.serviceAccounts ?? []) {
    credentials.addServiceAccount(clientId, clientSecret);
  }
  for (const { publicKey, privateKey } of options.apiKeys ?? []) credentials.addApiKey(publicKey, privateKey);
  if (options.failProbability !== undefined) checkProbability(options.failProbability, 'failProbability');
  let random = seededRandom(options.seed);
  const store = new EndpointStore({
    activationDelayMs: options.activationDelayMs ?? 1000,
    deletionDelayMs: options.deletionDelayMs ?? 1000,
    // Through a closure: reset() starts the random again from the seed.
    random: () => random(),
    failProbability: options.failProbability ?? 0,
  });
  const rateLimit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  const buckets = rateLimit ? new TokenBuckets(rateLimit.capacity, rateLimit.refillPerMinute) : undefined;
  const projects = options.projects ? new Set(options.projects) : undefined;
  const requests: RecordedRequest[] = [];
  let faults: Array<FaultRule & { left: number }> = [];
  let latencyMs = options.latencyMs ?? 0;
  let totalCountEstimate: ((actual: number) => number) | undefined;
  const landings = new Set<Landing>();
  const closing = new AbortController();
  let baseUrl = '';

  /** Waits without keeping the process alive; rejects when the simulator closes. */
  const pause = (ms: number) =>
    ms > 0 ? sleep(ms, undefined, { ref: false, signal: closing.signal }) : undefined;

  /** The first matching rule (in the order injected) whose probability draw hits, counted as a hit. */
  function takeFault(operation: SimOperation, groupId: string | undefined): FaultRule['fault'] | undefined {
    const rule = faults.find(
      (r) =>
        (!r.operations || r.operations.includes(operation)) &&
        (!r.groupId || r.groupId === groupId) &&
        (operation === 'create' || !CREATE_ONLY_FAULTS.has(r.fault.kind)) &&
        (r.probability === undefined || r.probability >= 1 || random() < r.probability),
    );
    if (!rule) return undefined;
    rule.left -= 1;
    if (rule.left <= 0) faults = faults.filter((r) => r !== rule);
    return rule.fault;
  }

  /** Creates the endpoint of a lateCreate when it lands (no conflict check), then drops the held answer. */
  function scheduleLanding(groupId: string, body: CreateEndpointBody, landAt: number, res: ServerResponse) {
    const landing: Landing = {
      timer: setTimeout(
        () => {
          landings.delete(landing);
          store.create(groupId, body);
          res.socket?.destroy();
        },
        Math.max(0, landAt - Date.now()),
      ).unref(),
      res,
    };
    landings.add(landing);
  }

  function cancelLandings() {
    for (const landing of landings) {
      clearTimeout(landing.timer);
      landing.res.socket?.destroy();
    }
    landings.clear();
  }

  function faultAnswer(fault: Extract<FaultRule['fault'], { kind: 'status' }>, oauth: boolean): Answer {
    const retryAfter: Record<string, number> =
      fault.retryAfterSeconds !== undefined ? { 'retry-after': fault.retryAfterSeconds } : {};
    if (oauth) {
      const answer = oauthError(
        fault.status,
        fault.errorCode ?? OAUTH_ERRORS[fault.status] ?? 'server_error',
        'Injected fault.',
      );
      return { ...answer, headers: { ...answer.headers, ...retryAfter } };
    }
    const errorCode = fault.errorCode ?? FAULT_ERROR_CODES[fault.status] ?? `HTTP_${fault.status}`;
    const answer = apiError(fault.status, errorCode, `Injected fault: ${reason(fault.status)}.`);
    return { ...answer, headers: { ...answer.headers, ...retryAfter } };
  }

  /** Applies latency and the fault, then writes the answer (or destroys the socket). */
  async function deliver(
    res: ServerResponse,
    record: RecordedRequest,
    answer: Answer,
    options: { lost?: boolean; pretty?: boolean } = {},
  ): Promise<void> {
    await pause(latencyMs);
    if (options.lost) {
      res.socket?.destroy();
      return;
    }
    record.status = answer.status;
    const text =
      answer.body === undefined ? '' : JSON.stringify(answer.body, null, options.pretty ? 2 : undefined);
    res.writeHead(answer.status, {
      ...answer.headers,
      ...(text && { 'content-length': Buffer.byteLength(text) }),
    });
    res.end(text);
  }

  async function handleOAuth(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    raw: Buffer,
    operation: 'token' | 'revoke',
  ): Promise<void> {
    record.operation = operation;
    if (req.headers.authorization?.toLowerCase().startsWith('basic ')) record.auth = 'basic';
    if (req.method !== 'POST') {
      record.specViolations.push(`${req.method} is not allowed on the OAuth ${operation} endpoint`);
      return deliver(res, record, oauthError(405, 'invalid_request', `Use POST for ${operation}.`));
    }
    const fault = takeFault(operation, undefined);
    if (fault?.kind === 'reset') return void res.socket?.destroy();
    if (fault?.kind === 'delay') await pause(fault.ms);
    if (fault?.kind === 'status') return deliver(res, record, faultAnswer(fault, true));
    const lost = fault?.kind === 'lostResponse';

    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (contentType !== OAUTH_FORM) record.specViolations.push(`Content-Type must be ${OAUTH_FORM}`);
    const form = new URLSearchParams(raw.toString('utf8'));
    const clientId = credentials.basicClient(req.headers.authorization);
    if (!clientId) {
      if (record.auth !== 'basic')
        record.specViolations.push('the OAuth endpoints take HTTP Basic client credentials');
      const answer = oauthError(401, 'invalid_client', 'Client authentication failed.');
      answer.headers['www-authenticate'] = `Basic realm="${DIGEST_REALM}"`;
      return deliver(res, record, answer, { lost });
    }
    if (contentType !== OAUTH_FORM) {
      return deliver(res, record, oauthError(400, 'invalid_request', `Content-Type must be ${OAUTH_FORM}.`), {
        lost,
      });
    }
    if (operation === 'revoke') {
      const token = form.get('token');
      if (!token) {
        record.specViolations.push('revoke needs the token parameter');
        return deliver(res, record, oauthError(400, 'invalid_request', 'The token parameter is missing.'), {
          lost,
        });
      }
      credentials.revokeToken(clientId, token);
      return deliver(res, record, { status: 200, headers: { 'cache-control': 'no-store' } }, { lost });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      record.specViolations.push('grant_type must be client_credentials');
      return deliver(
        res,
        record,
        oauthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported.'),
        { lost },
      );
    }
    const token = credentials.issueToken(clientId);
    if (!token) {
      return deliver(
        res,
        record,
        oauthError(
          403,
          'access_denied',
          'The service account has reached its limit of active access tokens.',
        ),
        { lost },
      );
    }
    return deliver(
      res,
      record,
      {
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
        body: { access_token: token, expires_in: credentials.tokenTtlSeconds, token_type: 'Bearer' },
      },
      { lost },
    );
  }

  function perform(
    operation: SpecOperation,
    groupId: string,
    endpointId: string | undefined,
    query: URLSearchParams,
    body: unknown,
    version: string,
    mode: CreateMode = { kind: 'normal' },
  ): Answer | 'held' {
    const ok = (status: number, value?: unknown): Answer => ({
      status,
      headers: value === undefined ? {} : { 'content-type': `application/vnd.atlas.${version}+json` },
      ...(value !== undefined && { body: value }),
    });
    const notFound = () =>
      apiError(
        404,
        'RESOURCE_NOT_FOUND',
        `Cannot find resource backup private endpoint ${endpointId} in project ${groupId}.`,
        { parameters: [{ endpointId }] },
      );
    switch (operation.operation) {
      case 'list': {
        const itemsPerPage = Number(query.get('itemsPerPage') ?? 100);
        const pageNum = Number(query.get('pageNum') ?? 1);
        const includeCount = query.get('includeCount') !== 'false';
        const all = store.list(groupId);
        const results = all.slice((pageNum - 1) * itemsPerPage, pageNum * itemsPerPage);
        const self = `${baseUrl}/api/atlas/v2/groups/${groupId}/backup/AWS/privateEndpoints`;
        const page = (n: number) => `${self}?pageNum=${n}&itemsPerPage=${itemsPerPage}`;
        const links = [
          ...(pageNum > 1 ? [{ href: page(pageNum - 1), rel: 'previous' }] : []),
          { href: page(pageNum), rel: 'self' },
          ...(pageNum * itemsPerPage < all.length ? [{ href: page(pageNum + 1), rel: 'next' }] : []),
        ];
        const totalCount = totalCountEstimate
          ? Math.max(0, Math.round(totalCountEstimate(all.length)))
          : all.length;
        return ok(200, { links, results, ...(includeCount && { totalCount }) });
      }
      case 'create': {
        const request = body as CreateEndpointBody;
        const existing = store.conflicting(groupId, request);
        if (existing) {
          return apiError(
            409,
            'BACKUP_PRIVATE_ENDPOINT_ALREADY_EXISTS',
            `A backup private endpoint for ${request.regionName} (VPC region ${existing.vpcRegionName ?? request.regionName}) already exists in project ${groupId}: ${existing.id}.`,
            { parameters: [{ endpointId: existing.id }] },
          );
        }
        if (mode.kind === 'late') {
          scheduleLanding(groupId, request, mode.landAt, mode.res);
          return 'held';
        }
        const created = store.create(groupId, request);
        if (mode.kind === 'double') store.create(groupId, request);
        return ok(201, created);
      }
      case 'get': {
        const endpoint = endpointId ? store.get(groupId, endpointId) : undefined;
        return endpoint ? ok(200, endpoint) : notFound();
      }
      case 'delete':
        return endpointId && store.delete(groupId, endpointId) ? ok(204) : notFound();
    }
  }

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    raw: Buffer,
    url: URL,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const routed = spec.route(method, url.pathname);
    if (!('operation' in routed)) {
      const detail = routed.pathMatched
        ? `${method} is not allowed on ${url.pathname}.`
        : `No operation at ${url.pathname}.`;
      record.specViolations.push(detail);
      return deliver(
        res,
        record,
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
      return deliver(res, record, answer);
    }
    record.auth = auth.scheme;

    const fault = takeFault(operation.operation, groupId);
    if (fault?.kind === 'reset') return void res.socket?.destroy();
    if (fault?.kind === 'delay') await pause(fault.ms);
    if (fault?.kind === 'status') return deliver(res, record, faultAnswer(fault, false));
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
        return deliver(res, record, answer, { lost, pretty });
      }
    }
    const withRate = (answer: Answer): Answer => ({
      ...answer,
      headers: { ...answer.headers, ...rateHeaders },
    });

    const first = [...pathProblems, ...mediaProblems][0];
    if (first) return deliver(res, record, withRate(violationAnswer(first, ordered)), { lost, pretty });
    if (projects && !projects.has(groupId)) {
      const answer = apiError(404, 'GROUP_NOT_FOUND', `No group with ID ${groupId} exists.`, {
        parameters: [{ groupId }],
      });
      return deliver(res, record, withRate(answer), { lost, pretty });
    }
    const rest = [...queryProblems, ...bodyProblems][0];
    if (rest) return deliver(res, record, withRate(violationAnswer(rest, ordered)), { lost, pretty });

    const version = 'version' in accept ? accept.version : (spec.versions.at(-1) ?? '');
    const mode: CreateMode =
      fault?.kind === 'lateCreate'
        ? { kind: 'late', landAt: record.at + fault.landAfterMs, res }
        : fault?.kind === 'doubleCreate'
          ? { kind: 'double' }
          : { kind: 'normal' };
    const performed = perform(operation, groupId, params.endpointId, url.searchParams, body, version, mode);
    // A late create answers nothing: its socket is destroyed when it lands (or by the client giving up).
    if (performed === 'held') return;
    let answer = withRate(performed);
    if (url.searchParams.get('envelope') === 'true')
      answer = envelope(answer, operation.operation === 'list');
    return deliver(res, record, answer, { lost, pretty });
  }

  /** envelope=true: always 200, the status moved into the body (lists carry it beside results). */
  function envelope(answer: Answer, isList: boolean): Answer {
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RecordedRequest = {
      operation: 'unknown',
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      auth: 'none',
      specViolations: [],
      at: Date.now(),
    };
    requests.push(record);
    const raw = await readBody(req);
    if (url.pathname === '/api/oauth/token') return handleOAuth(req, res, record, raw, 'token');
    if (url.pathname === '/api/oauth/revoke') return handleOAuth(req, res, record, raw, 'revoke');
    return handleApi(req, res, record, raw, url);
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (closing.signal.aborted || res.headersSent) {
        res.socket?.destroy();
        return;
      }
      const answer = apiError(500, 'UNEXPECTED_ERROR', `Simulator error: ${(error as Error).message}`);
      res.writeHead(answer.status, answer.headers);
      res.end(JSON.stringify(answer.body));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    async close() {
      closing.abort();
      cancelLandings();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    reset() {
      cancelLandings();
      store.reset();
      random = seededRandom(options.seed);
      totalCountEstimate = undefined;
      credentials.revokeAllTokens();
      faults = [];
      requests.splice(0);
      buckets?.reset();
    },
    addServiceAccount: (clientId, clientSecret) => credentials.addServiceAccount(clientId, clientSecret),
    removeServiceAccount: (clientId) => credentials.removeServiceAccount(clientId),
    addApiKey: (publicKey, privateKey) => credentials.addApiKey(publicKey, privateKey),
    removeApiKey: (publicKey) => credentials.removeApiKey(publicKey),
    revokeAllTokens: () => credentials.revokeAllTokens(),
    injectFault(rule) {
      const checked = parseFaultRule(rule);
      faults.push({ ...structuredClone(checked), left: checked.times ?? Number.POSITIVE_INFINITY });
    },
    clearFaults() {
      faults = [];
    },
    setCreateStatus: (groupId, status, errorMessage) => store.setCreateStatus(groupId, status, errorMessage),
    setEndpointStatus: (groupId, endpointId, status, errorMessage) =>
      store.setStatus(groupId, endpointId, status, errorMessage),
    removeEndpoint: (groupId, endpointId) => store.remove(groupId, endpointId),
    seedEndpoint: (groupId, endpoint) => store.seed(groupId, endpoint),
    endpoints: (groupId) => store.all(groupId),
    get requests() {
      return requests;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    setTotalCountEstimate(estimate) {
      totalCountEstimate = estimate;
    },
    setFailProbability(probability) {
      checkProbability(probability, 'failProbability');
      store.setFailProbability(probability);
    },
    duplicates: () => store.duplicates(),
  };
}

/** A random 24-hex project id, for tests. */
export const newGroupId = (): string => randomBytes(12).toString('hex');
