/**
 * A StatusChecker wired to the in-memory ledger, an aws-sdk-client-mock fake of EventBridge (the
 * real StatusEvents runs on top of it) and a fake Atlas that counts list calls. The ledger's
 * DynamoDB expressions are proven against moto in ledger.moto.test.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import { ATLAS_REGIONS, type AtlasEndpoint, type CloudProvider } from '#atlas/types.ts';
import { type ListingApi, StatusChecker, type StatusCheckerOptions } from '#check-status/status-checker.ts';
import { StatusEvents } from '#events/publisher.ts';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { TRACKED } from '#ledger/schema.ts';
import { naturalKey } from '#messages/request.ts';
import { InMemoryLedger } from '#test/support/in-memory-ledger.ts';

export const NOW = new Date('2026-11-29T10:00:00.000Z');
export const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();

export const eventBridge = mockClient(EventBridgeClient);

/** The ledger's items, in memory, with helpers to put them in a given state. */
export class FakeTable {
  readonly ledger = new InMemoryLedger(() => NOW);
  readonly items = this.ledger.items;
  #groups = 0;

  /** Adds a tracked item for a fresh project unless `groupId` is given. */
  put(overrides: Partial<LedgerItem> = {}): LedgerItem {
    this.#groups += 1;
    const groupId = overrides.groupId ?? this.#groups.toString(16).padStart(24, 'a');
    // Distinct (region, VPC region) pairs keep every item's natural key unique.
    const n = this.items.size;
    const fields = {
      groupId,
      cloudProvider: 'AWS' as const,
      regionName: ATLAS_REGIONS[n % ATLAS_REGIONS.length] ?? 'US_EAST_1',
      vpcRegionName:
        ATLAS_REGIONS[Math.floor(n / ATLAS_REGIONS.length) % ATLAS_REGIONS.length] ?? 'US_EAST_1',
      ...overrides,
    };
    const item: LedgerItem = {
      key: naturalKey(fields as Parameters<typeof naturalKey>[0]),
      profile: 'default',
      action: 'create',
      requesters: { default: [`req-${this.items.size + 1}`] },
      status: 'INITIATING',
      statusSince: minutesAgo(5),
      endpointId: `e${(this.items.size + 1).toString(16).padStart(23, '0')}`,
      tracked: TRACKED,
      checkedAt: minutesAgo(5),
      createdAt: minutesAgo(10),
      updatedAt: minutesAgo(5),
      ...fields,
    };
    this.ledger.store(item);
    return item;
  }

  /** The stored item itself (a test may change it behind the checker's back). */
  get(key: string): LedgerItem | undefined {
    return this.items.get(key);
  }
}

/** Atlas as the checker sees it: endpoints per project, failures queued per project, calls counted. */
export class FakeAtlas {
  readonly endpoints = new Map<string, AtlasEndpoint[]>();
  readonly calls: Array<{ profile: string; groupId: string; cloudProvider: CloudProvider }> = [];
  readonly deletes: Array<{ groupId: string; endpointId: string }> = [];
  readonly #failures = new Map<string, unknown[]>();
  latencyMs = 0;

  /** The AtlasProfiles stand-in: one listing client per profile. */
  readonly profiles = {
    withClient: <T>(profile: string, fn: (client: ListingApi) => Promise<T>): Promise<T> =>
      fn({
        listEndpoints: (groupId, cloudProvider) => this.#list(profile, groupId, cloudProvider),
        deleteEndpoint: async (groupId, _cloudProvider, endpointId) => {
          this.deletes.push({ groupId, endpointId });
          const found = this.endpoints.get(groupId)?.find((e) => e.id === endpointId);
          if (found) found.status = 'DELETING';
        },
      }),
  };

  /** The endpoint of a ledger item, as Atlas lists it. */
  seedFor(item: LedgerItem, status: string, errorMessage?: string): AtlasEndpoint {
    const endpoint: AtlasEndpoint = {
      id: item.endpointId ?? '',
      cloudProvider: 'AWS',
      regionName: item.regionName,
      status,
      ...(errorMessage !== undefined && { errorMessage }),
    };
    this.endpoints.set(item.groupId, [...(this.endpoints.get(item.groupId) ?? []), endpoint]);
    return endpoint;
  }

  failNext(groupId: string, ...errors: unknown[]) {
    this.#failures.set(groupId, [...(this.#failures.get(groupId) ?? []), ...errors]);
  }

  listCallsFor(groupId: string) {
    return this.calls.filter((c) => c.groupId === groupId).length;
  }

  async #list(profile: string, groupId: string, cloudProvider: CloudProvider): Promise<AtlasEndpoint[]> {
    this.calls.push({ profile, groupId, cloudProvider });
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    const failure = this.#failures.get(groupId)?.shift();
    if (failure !== undefined) throw failure;
    return (this.endpoints.get(groupId) ?? []).map((e) => ({ ...e }));
  }
}

/** Resets the SDK fakes onto a fresh in-memory table; PutEvents accepts everything. */
let table = new FakeTable();

export function resetAws(): FakeTable {
  eventBridge.reset();
  table = new FakeTable();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
  return table;
}

/** The status event details published so far, each checked against the published schema. */
export function publishedDetails(): StatusChangedDetail[] {
  return eventBridge
    .commandCalls(PutEventsCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => StatusChangedDetailSchema.parse(JSON.parse(entry.Detail ?? '{}')));
}

export function buildChecker(atlas: FakeAtlas, overrides: Partial<StatusCheckerOptions> = {}) {
  const metrics = { addMetric: vi.fn() };
  const logger = new Logger({ serviceName: 'status-checker', logLevel: 'SILENT' });
  const now = overrides.now ?? (() => NOW);
  const checker = new StatusChecker({
    ledger: table.ledger,
    atlas: atlas.profiles,
    events: new StatusEvents({
      busName: 'default',
      source: 'atlas.backup-private-endpoints',
      client: new EventBridgeClient({ region: 'us-east-1' }),
    }),
    logger,
    metrics,
    deadlines: { pendingAcceptanceMinutes: 1_440, inProgressMinutes: 60 },
    projectConcurrency: 4,
    safetyMarginMs: 10_000,
    now,
    ...overrides,
  });
  return { checker, metrics, logger };
}

/** Plenty of time left: the run never stops early. */
export const plentyOfTime = { remainingMs: () => 600_000 };
