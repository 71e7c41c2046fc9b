/**
 * The Atlas simulator's public API (implemented in ./index.ts): an HTTP server that speaks the
 * backup private endpoint operations, OAuth and Digest like Atlas, for tests and local runs.
 */
import type { AtlasEndpoint } from '#atlas/types.ts';
import type { FaultRule, SimOperation } from '#test/simulator/fault-schema.ts';

export type { ApiOperation, Fault, FaultRule, SimOperation } from '#test/simulator/fault-schema.ts';

export interface SimulatorOptions {
  /** 0 (default) picks a free port on 127.0.0.1. */
  port?: number;
  /** Valid service accounts and API keys; more can be added or removed while running (rotation). */
  serviceAccounts?: Array<{ clientId: string; clientSecret: string }>;
  apiKeys?: Array<{ publicKey: string; privateKey: string }>;
  /** Token lifetime, s. Default 3600. */
  tokenTtlSeconds?: number;
  /** INITIATING -> ACTIVE after this many ms. Default 1000. */
  activationDelayMs?: number;
  /** DELETING -> gone after this many ms. Default 1000. */
  deletionDelayMs?: number;
  /** Per-project token bucket; false disables it. Default Atlas's: capacity 1200, refill 500 per 60 s. */
  rateLimit?: { capacity: number; refillPerMinute: number } | false;
  /** Fixed latency added to every answer, ms. Default 0. */
  latencyMs?: number;
  /** Projects that exist; requests for others answer 404 GROUP_NOT_FOUND. Default: every valid id exists. */
  projects?: string[];
  /** Digest nonce lifetime, ms, after which a nonce is answered with stale=true. Default 60000. */
  nonceTtlMs?: number;
  /** Seed of the simulator's random (fault probabilities, endpoint failures; endpoint ids stay random). Default: unseeded. */
  seed?: number;
  /**
   * INITIATING endpoints become FAILED instead of ACTIVE with this probability (seeded, drawn when the
   * endpoint is created), with an Atlas-like errorMessage. Default 0.
   */
  failProbability?: number;
}

export interface RecordedRequest {
  operation: SimOperation | 'unknown';
  method: string;
  path: string;
  query: Record<string, string>;
  groupId?: string;
  /** Status answered (0 when the socket was destroyed). */
  status: number;
  /** How the request authenticated: 'bearer', 'digest', 'basic' (token endpoint), 'challenge' (401 digest challenge) or 'none'. */
  auth: 'bearer' | 'digest' | 'basic' | 'challenge' | 'none';
  /** Problems found validating the request against the official spec (empty when valid). */
  specViolations: string[];
  at: number;
}

export interface SimEndpoint extends AtlasEndpoint {
  groupId: string;
}

export interface AtlasSimulator {
  readonly url: string;
  close(): Promise<void>;
  /**
   * Forget endpoints, tokens, faults, recorded requests, rate-limit state, the totalCount estimate and
   * pending lateCreate landings (cancelled: they never land; their sockets are destroyed); the random
   * starts again from the seed. Keeps credentials and the fail probability.
   */
  reset(): void;
  addServiceAccount(clientId: string, clientSecret: string): void;
  removeServiceAccount(clientId: string): void;
  addApiKey(publicKey: string, privateKey: string): void;
  removeApiKey(publicKey: string): void;
  /** Invalidate every issued bearer token (next API call with one answers 401). */
  revokeAllTokens(): void;
  /** Adds a rule after the others; a RangeError naming the field when the rule is not a valid FaultRule. */
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /** The status the next created endpoint(s) of a project start in instead of INITIATING (e.g. PENDING_ACCEPTANCE, FAILED). */
  setCreateStatus(groupId: string, status: string, errorMessage?: string): void;
  /** Force an endpoint's status (any string, including ones Atlas may add later). */
  setEndpointStatus(groupId: string, endpointId: string, status: string, errorMessage?: string): void;
  /** Remove an endpoint behind the provisioner's back (drift). */
  removeEndpoint(groupId: string, endpointId: string): void;
  /**
   * Atlas recreates an endpoint under a new id (the cloud side rejected or removed it): it shows
   * PENDING_RECREATION for `pendingMs` (0: gone at once), then a new INITIATING endpoint for the same
   * regions takes its place. The `recreate` fault does the same to a created endpoint once it is ACTIVE.
   */
  recreateEndpoint(groupId: string, endpointId: string, pendingMs: number): void;
  /** Add an endpoint directly (e.g. one that already exists before the provisioner runs). */
  seedEndpoint(groupId: string, endpoint: Omit<AtlasEndpoint, 'id'> & { id?: string }): SimEndpoint;
  endpoints(groupId?: string): SimEndpoint[];
  readonly requests: readonly RecordedRequest[];
  /** Change the fixed latency while running. */
  setLatency(ms: number): void;
  /**
   * List answers carry totalCount = estimate(actual) instead of the true count (the spec calls totalCount an
   * estimate), rounded and floored at 0 so the answer stays valid; undefined restores the truth. Links and
   * results stay true.
   */
  setTotalCountEstimate(estimate?: (actual: number) => number): void;
  /** Make new INITIATING endpoints fail (instead of activating) with this probability from now on. */
  setFailProbability(probability: number): void;
  /** Natural keys (groupId, regionName, vpcRegionName) that have more than one endpoint not DELETING: the duplicates. */
  duplicates(): Array<{ groupId: string; regionName: string; vpcRegionName: string; ids: string[] }>;
}
