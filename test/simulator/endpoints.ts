/**
 * The simulator's endpoints per project and their lifecycle: INITIATING becomes ACTIVE (or FAILED,
 * with the fail probability, decided when it is created) after the activation delay, DELETING
 * disappears after the deletion delay, and an endpoint Atlas recreates shows PENDING_RECREATION and
 * is then replaced by a new endpoint (a new id, INITIATING) for the same regions. All of it is
 * computed lazily from timestamps, so no timer outlives the server.
 */
import { randomBytes } from 'node:crypto';
import type { AtlasEndpoint, AtlasStatus, CreateEndpointBody } from '#atlas/types.ts';
import type { SimEndpoint } from '#test/simulator/types.ts';

const HEX24 = /^[a-f0-9]{24}$/;
const DEFAULT_FAILURE = 'The interface endpoint could not be created in the VPC.';
/** What an endpoint that fails on its own (failProbability) says, in Atlas's words as far as known. */
const FAILURES = [
  'Failed to create the interface VPC endpoint: the endpoint service rejected the connection.',
  'Failed to create the interface VPC endpoint: the VPC endpoint quota for this region was exceeded.',
  'Failed to provision the private endpoint: an internal error occurred. Delete the endpoint and create it again.',
  DEFAULT_FAILURE,
];

interface Stored {
  endpoint: AtlasEndpoint;
  /** When INITIATING turns ACTIVE (or FAILED); unset when the status is pinned or not INITIATING. */
  activateAt?: number;
  /** Set when the endpoint turns FAILED with this message instead of ACTIVE at activateAt. */
  failWith?: string;
  /** When a DELETING endpoint disappears. */
  removeAt?: number;
  /** Recreated by Atlas once ACTIVE: `activeMs` after activating, PENDING_RECREATION for `pendingMs`. */
  recreate?: RecreatePlan;
  /** When an ACTIVE endpoint turns PENDING_RECREATION. */
  pendingRecreationAt?: number;
  /** When a PENDING_RECREATION endpoint is gone and its replacement appears. */
  replaceAt?: number;
}

/** How Atlas recreates an endpoint: how long it stays ACTIVE first, how long PENDING_RECREATION lasts. */
export interface RecreatePlan {
  activeMs: number;
  pendingMs: number;
}

/** An ObjectId-like id: 4 bytes of seconds, then 8 random bytes, in lower-case hex. */
export function newEndpointId(now: number): string {
  const seconds = Math.floor(now / 1000)
    .toString(16)
    .padStart(8, '0')
    .slice(-8);
  return `${seconds}${randomBytes(8).toString('hex')}`;
}

const connectionName = () => `vpce-${randomBytes(9).toString('hex').slice(0, 17)}`;

export interface EndpointStoreOptions {
  activationDelayMs: number;
  deletionDelayMs: number;
  now?: () => number;
  /** Numbers in [0, 1) for the fail probability. Default Math.random. */
  random?: () => number;
  /** Probability that a new INITIATING endpoint fails instead of activating. Default 0. */
  failProbability?: number;
}

export class EndpointStore {
  readonly #groups = new Map<string, Map<string, Stored>>();
  readonly #createStatus = new Map<string, { status: AtlasStatus; errorMessage?: string }>();
  readonly #options: EndpointStoreOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #failProbability: number;

  constructor(options: EndpointStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Date.now());
    this.#random = options.random ?? Math.random;
    this.#failProbability = options.failProbability ?? 0;
  }

  /** From now on, new INITIATING endpoints fail with this probability. */
  setFailProbability(probability: number): void {
    this.#failProbability = probability;
  }

  reset(): void {
    this.#groups.clear();
    this.#createStatus.clear();
  }

  /** The project's endpoints in creation order, with their current status. */
  list(groupId: string): AtlasEndpoint[] {
    const group = this.#groups.get(groupId);
    if (!group) return [];
    // A first pass brings every endpoint up to now: a recreation replaces one with a new id.
    for (const id of [...group.keys()]) this.get(groupId, id);
    return [...group.keys()].flatMap((id) => {
      const endpoint = this.get(groupId, id);
      return endpoint ? [endpoint] : [];
    });
  }

  get(groupId: string, id: string): AtlasEndpoint | undefined {
    const group = this.#groups.get(groupId);
    const stored = group?.get(id);
    if (!group || !stored) return undefined;
    const now = this.#now();
    if (stored.removeAt !== undefined && now >= stored.removeAt) {
      group.delete(id);
      return undefined;
    }
    if (stored.activateAt !== undefined && now >= stored.activateAt) {
      if (stored.failWith !== undefined) {
        stored.endpoint.status = 'FAILED';
        stored.endpoint.errorMessage = stored.failWith;
      } else {
        stored.endpoint.status = 'ACTIVE';
        stored.endpoint.privateEndpointConnectionName ??= connectionName();
      }
      if (stored.recreate && stored.endpoint.status === 'ACTIVE') {
        stored.pendingRecreationAt = stored.activateAt + stored.recreate.activeMs;
        stored.replaceAt = stored.pendingRecreationAt + stored.recreate.pendingMs;
      }
      stored.activateAt = undefined;
      stored.failWith = undefined;
      stored.recreate = undefined;
    }
    if (stored.pendingRecreationAt !== undefined && now >= stored.pendingRecreationAt) {
      stored.endpoint.status = 'PENDING_RECREATION';
      stored.pendingRecreationAt = undefined;
    }
    if (stored.replaceAt !== undefined && now >= stored.replaceAt) {
      group.delete(id);
      this.#replace(groupId, stored.endpoint, stored.replaceAt);
      return undefined;
    }
    return structuredClone(stored.endpoint);
  }

  /**
   * Atlas recreates the endpoint under a new id: PENDING_RECREATION from now for `pendingMs`, then
   * gone, and a new INITIATING endpoint for the same regions in its place.
   */
  recreate(groupId: string, id: string, pendingMs: number): void {
    const stored = this.get(groupId, id) && this.#groups.get(groupId)?.get(id);
    if (!stored) throw new Error(`recreateEndpoint: no endpoint ${id} in project ${groupId}`);
    this.#settle(stored);
    stored.endpoint.status = 'PENDING_RECREATION';
    delete stored.endpoint.errorMessage;
    stored.replaceAt = this.#now() + pendingMs;
  }

  /** The live endpoint for the same regions, which makes a create conflict. */
  conflicting(groupId: string, body: CreateEndpointBody): AtlasEndpoint | undefined {
    const vpcRegionName = body.vpcRegionName ?? body.regionName;
    return this.list(groupId).find(
      (e) =>
        e.status !== 'DELETING' &&
        e.cloudProvider === body.cloudProvider &&
        e.regionName === body.regionName &&
        (e.vpcRegionName ?? e.regionName) === vpcRegionName,
    );
  }

  /** Creates an endpoint; with `recreate`, Atlas recreates it under a new id once it has been ACTIVE. */
  create(groupId: string, body: CreateEndpointBody, recreate?: RecreatePlan): AtlasEndpoint {
    const start = this.#createStatus.get(groupId) ?? { status: 'INITIATING' };
    const now = this.#now();
    const endpoint: AtlasEndpoint = {
      id: newEndpointId(now),
      cloudProvider: body.cloudProvider,
      regionName: body.regionName,
      vpcRegionName: body.vpcRegionName ?? body.regionName,
      status: start.status,
      ...(start.status === 'FAILED' && { errorMessage: start.errorMessage ?? DEFAULT_FAILURE }),
      ...(start.status !== 'FAILED' &&
        start.errorMessage !== undefined && { errorMessage: start.errorMessage }),
    };
    this.#put(groupId, endpoint);
    const stored = this.#groups.get(groupId)?.get(endpoint.id);
    if (recreate && stored) stored.recreate = recreate;
    return structuredClone(endpoint);
  }

  /** Starts deletion; false when there is no such endpoint. Deleting twice keeps the first deadline. */
  delete(groupId: string, id: string): boolean {
    if (!this.get(groupId, id)) return false;
    const stored = this.#groups.get(groupId)?.get(id);
    if (!stored) return false;
    if (stored.endpoint.status !== 'DELETING' || stored.removeAt === undefined) {
      this.#settle(stored);
      stored.endpoint.status = 'DELETING';
      stored.removeAt = this.#now() + this.#options.deletionDelayMs;
    }
    return true;
  }

  seed(groupId: string, endpoint: Omit<AtlasEndpoint, 'id'> & { id?: string }): SimEndpoint {
    if (!HEX24.test(groupId))
      throw new Error(`seedEndpoint: groupId ${groupId} is not 24 lower-case hex digits`);
    if (endpoint.id !== undefined && !HEX24.test(endpoint.id)) {
      throw new Error(`seedEndpoint: id ${endpoint.id} is not 24 lower-case hex digits`);
    }
    const seeded: AtlasEndpoint = {
      ...endpoint,
      id: endpoint.id ?? newEndpointId(this.#now()),
      vpcRegionName: endpoint.vpcRegionName ?? endpoint.regionName,
    };
    if (seeded.status === 'ACTIVE') seeded.privateEndpointConnectionName ??= connectionName();
    if (seeded.status === 'FAILED') seeded.errorMessage ??= DEFAULT_FAILURE;
    this.#put(groupId, seeded);
    return { ...structuredClone(seeded), groupId };
  }

  /** Forces a status (any string); a forced status stays until changed again. */
  setStatus(groupId: string, id: string, status: AtlasStatus, errorMessage?: string): void {
    const stored = this.get(groupId, id) && this.#groups.get(groupId)?.get(id);
    if (!stored) throw new Error(`setEndpointStatus: no endpoint ${id} in project ${groupId}`);
    this.#settle(stored);
    stored.endpoint.status = status;
    stored.removeAt = undefined;
    if (errorMessage !== undefined) stored.endpoint.errorMessage = errorMessage;
    else if (status === 'FAILED') stored.endpoint.errorMessage ??= DEFAULT_FAILURE;
    else delete stored.endpoint.errorMessage;
    if (status === 'ACTIVE') stored.endpoint.privateEndpointConnectionName ??= connectionName();
  }

  /** The status new endpoints of a project start in; INITIATING restores the normal lifecycle. */
  setCreateStatus(groupId: string, status: AtlasStatus, errorMessage?: string): void {
    if (status === 'INITIATING' && errorMessage === undefined) this.#createStatus.delete(groupId);
    else this.#createStatus.set(groupId, { status, ...(errorMessage !== undefined && { errorMessage }) });
  }

  remove(groupId: string, id: string): void {
    this.#groups.get(groupId)?.delete(id);
  }

  all(groupId?: string): SimEndpoint[] {
    const groups = groupId === undefined ? [...this.#groups.keys()] : [groupId];
    return groups.flatMap((g) => this.list(g).map((endpoint) => ({ ...endpoint, groupId: g })));
  }

  /** Natural keys with more than one endpoint not DELETING (FAILED ones count), ids in creation order. */
  duplicates(): Array<{ groupId: string; regionName: string; vpcRegionName: string; ids: string[] }> {
    const byKey = new Map<
      string,
      { groupId: string; regionName: string; vpcRegionName: string; ids: string[] }
    >();
    for (const e of this.all()) {
      if (e.status === 'DELETING') continue;
      const vpcRegionName = e.vpcRegionName ?? e.regionName;
      const key = [e.groupId, e.cloudProvider, e.regionName, vpcRegionName].join('#');
      const entry = byKey.get(key) ?? {
        groupId: e.groupId,
        regionName: e.regionName,
        vpcRegionName,
        ids: [],
      };
      entry.ids.push(e.id);
      byKey.set(key, entry);
    }
    return [...byKey.values()].filter((entry) => entry.ids.length > 1);
  }

  /** Ends whatever the endpoint had scheduled: its status is about to be set by hand. */
  #settle(stored: Stored): void {
    stored.activateAt = undefined;
    stored.failWith = undefined;
    stored.recreate = undefined;
    stored.pendingRecreationAt = undefined;
    stored.replaceAt = undefined;
  }

  /** The endpoint Atlas creates in place of a recreated one, as if created at `at`. */
  #replace(groupId: string, old: AtlasEndpoint, at: number): void {
    const { cloudProvider, regionName, vpcRegionName } = old;
    this.#put(
      groupId,
      { id: newEndpointId(at), cloudProvider, regionName, vpcRegionName, status: 'INITIATING' },
      at,
    );
  }

  #put(groupId: string, endpoint: AtlasEndpoint, at = this.#now()): void {
    let group = this.#groups.get(groupId);
    if (!group) {
      group = new Map();
      this.#groups.set(groupId, group);
    }
    const initiating = endpoint.status === 'INITIATING';
    // Drawn only when failures are asked for, so they leave the fault draws of a seeded run alone otherwise.
    const fails = initiating && this.#failProbability > 0 && this.#random() < this.#failProbability;
    group.set(endpoint.id, {
      endpoint,
      ...(initiating && { activateAt: at + this.#options.activationDelayMs }),
      ...(fails && { failWith: FAILURES[Math.floor(this.#random() * FAILURES.length)] ?? DEFAULT_FAILURE }),
      ...(endpoint.status === 'DELETING' && { removeAt: at + this.#options.deletionDelayMs }),
    });
  }
}
