/**
 * The Atlas simulator: a node:http server on 127.0.0.1 speaking the four backup private endpoint
 * operations, OAuth client credentials and Digest like Atlas, validating every request against the
 * official spec copy (test/simulator/) and recording what it found.
 *
 * Its parts, one concern each: server.ts (HTTP), admin-api.ts (routing and the order of checks),
 * request-checks.ts (the request against the spec), operations.ts on endpoints.ts (the four
 * operations and the endpoint lifecycle), oauth-endpoints.ts and auth.ts (credentials), faults.ts
 * with fault-schema.ts (injected faults), rate-limit.ts, recorder.ts (what it found), answers.ts.
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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { handleApi } from '#test/simulator/admin-api.ts';
import { Credentials } from '#test/simulator/auth.ts';
import { EndpointStore } from '#test/simulator/endpoints.ts';
import type { SimulatorParts } from '#test/simulator/exchange.ts';
import { FaultRules, LateCreates } from '#test/simulator/faults.ts';
import { handleOAuth } from '#test/simulator/oauth-endpoints.ts';
import { checkProbability, seededRandom } from '#test/simulator/random.ts';
import { TokenBuckets } from '#test/simulator/rate-limit.ts';
import { RequestLog } from '#test/simulator/recorder.ts';
import { listen, readBody } from '#test/simulator/server.ts';
import { loadAtlasSpec } from '#test/simulator/spec.ts';
import type { AtlasSimulator, SimulatorOptions } from '#test/simulator/types.ts';

export type * from '#test/simulator/types.ts';

const DEFAULT_RATE_LIMIT = { capacity: 1200, refillPerMinute: 500 };

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
  // Through a closure: reset() starts the random again from the seed.
  const draw = () => random();
  const rateLimit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  const closing = new AbortController();
  const parts: SimulatorParts = {
    spec,
    credentials,
    store: new EndpointStore({
      activationDelayMs: options.activationDelayMs ?? 1000,
      deletionDelayMs: options.deletionDelayMs ?? 1000,
      random: draw,
      failProbability: options.failProbability ?? 0,
    }),
    faults: new FaultRules(draw),
    lateCreates: new LateCreates(),
    buckets: rateLimit ? new TokenBuckets(rateLimit.capacity, rateLimit.refillPerMinute) : undefined,
    projects: options.projects ? new Set(options.projects) : undefined,
    baseUrl: '',
    latencyMs: options.latencyMs ?? 0,
    totalCountEstimate: undefined,
    pause: (ms) => (ms > 0 ? sleep(ms, undefined, { ref: false, signal: closing.signal }) : undefined),
  };
  const { store, faults, lateCreates, buckets } = parts;
  const log = new RequestLog();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record = log.open(req.method ?? '', url);
    const exchange = { req, res, url, record, raw: await readBody(req) };
    if (url.pathname === '/api/oauth/token') return handleOAuth(parts, exchange, 'token');
    if (url.pathname === '/api/oauth/revoke') return handleOAuth(parts, exchange, 'revoke');
    return handleApi(parts, exchange);
  }

  const server = await listen(options.port ?? 0, handle, closing.signal);
  parts.baseUrl = server.url;

  return {
    url: server.url,
    async close() {
      closing.abort();
      lateCreates.cancelAll();
      await server.close();
    },
    reset() {
      lateCreates.cancelAll();
      store.reset();
      random = seededRandom(options.seed);
      parts.totalCountEstimate = undefined;
      credentials.revokeAllTokens();
      faults.clear();
      log.clear();
      buckets?.reset();
    },
    addServiceAccount: (clientId, clientSecret) => credentials.addServiceAccount(clientId, clientSecret),
    removeServiceAccount: (clientId) => credentials.removeServiceAccount(clientId),
    addApiKey: (publicKey, privateKey) => credentials.addApiKey(publicKey, privateKey),
    removeApiKey: (publicKey) => credentials.removeApiKey(publicKey),
    revokeAllTokens: () => credentials.revokeAllTokens(),
    injectFault: (rule) => faults.inject(rule),
    clearFaults: () => faults.clear(),
    setCreateStatus: (groupId, status, errorMessage) => store.setCreateStatus(groupId, status, errorMessage),
    setEndpointStatus: (groupId, endpointId, status, errorMessage) =>
      store.setStatus(groupId, endpointId, status, errorMessage),
    removeEndpoint: (groupId, endpointId) => store.remove(groupId, endpointId),
    recreateEndpoint: (groupId, endpointId, pendingMs) => store.recreate(groupId, endpointId, pendingMs),
    seedEndpoint: (groupId, endpoint) => store.seed(groupId, endpoint),
    endpoints: (groupId) => store.all(groupId),
    get requests() {
      return log.requests;
    },
    setLatency(ms) {
      parts.latencyMs = ms;
    },
    setTotalCountEstimate(estimate) {
      parts.totalCountEstimate = estimate;
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
