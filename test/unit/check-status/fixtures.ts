/**
 * A StatusChecker wired to aws-sdk-client-mock fakes of DynamoDB and EventBridge (the real
 * Ledger and StatusEvents run on top of them) and to a fake Atlas that counts list calls. The
 * DynamoDB fake keeps a table in memory: it pages the `byCheck` index in checkedAt order and
 * applies the Ledger's SET/REMOVE updates under recordCheck's condition, enough for the
 * checker's paths; the expressions themselves are proven against moto in ledger.moto.test.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import { ATLAS_REGIONS, type AtlasEndpoint, type CloudProvider } from '#atlas/types.ts';
import { StatusEvents } from '#lib/events.ts';
import { Ledger, type LedgerItem, TRACKED } from '#lib/ledger.ts';
import { naturalKey } from '#lib/request.ts';
import { type ListingApi, StatusChecker, type StatusCheckerOptions } from '#lib/status-checker.ts';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#lib/status-event.ts';

export const NOW = new Date('2026-11-29T10:00:00.000Z');
export const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();

export const ddb = mockClient(DynamoDBDocumentClient);
export const eventBridge = mockClient(EventBridgeClient);

type Raw = Record<string, unknown>;

/** The ledger table behind the DynamoDB fake, by key. */
export class FakeTable {
  readonly items = new Map<string, Raw>();
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
      requestIds: [`req-${this.items.size + 1}`],
      status: 'INITIATING',
      statusSince: minutesAgo(5),
      endpointId: `e${(this.items.size + 1).toString(16).padStart(23, '0')}`,
      tracked: TRACKED,
      checkedAt: minutesAgo(5),
      createdAt: minutesAgo(10),
      updatedAt: minutesAgo(5),
      ...fields,
    };
    const { requestIds, ...rest } = item;
    this.items.set(item.key, { ...rest, requestIds: new Set(requestIds) });
    return item;
  }

  get(key: string): Raw | undefined {
    return this.items.get(key);
  }

  query(input: QueryCommand['input']) {
    const ordered = [...this.items.values()]
      .filter((item) => item.tracked === TRACKED)
      .sort((a, b) => order(a).localeCompare(order(b)));
    const start = input.ExclusiveStartKey;
    const from = start ? ordered.filter((item) => order(item) > order(start)) : ordered;
    const page = from.slice(0, input.Limit ?? from.length);
    const last = page.at(-1);
    return {
      Items: page.map((item) => structuredClone(item)),
      ...(last &&
        from.length > page.length && {
          LastEvaluatedKey: { key: last.key, tracked: last.tracked, checkedAt: last.checkedAt },
        }),
    };
  }

  update(input: UpdateCommand['input']) {
    const key = String(input.Key?.key);
    const item = this.items.get(key);
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const lease = item?.lease as { expiresAt: number } | undefined;
    const allowed =
      item !== undefined &&
      item.status === values[':expected'] &&
      (lease === undefined || lease.expiresAt < Number(values[':nowMs']));
    if (!allowed) {
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    }
    const name = (token: string) => names[token.trim()] ?? token.trim();
    const [, set = '', remove = ''] = /^SET (.*?)(?: REMOVE (.*))?$/.exec(input.UpdateExpression ?? '') ?? [];
    const updated: Raw = { ...item };
    for (const assignment of set.split(/, (?![^(]*\))/)) {
      const [path = '', expression = ''] = assignment.split(' = ');
      const ifNotExists = /^if_not_exists\((.+), (:\w+)\)$/.exec(expression);
      if (ifNotExists) updated[name(path)] ??= values[ifNotExists[2] ?? ''];
      else updated[name(path)] = values[expression];
    }
    for (const path of remove ? remove.split(', ') : []) delete updated[name(path)];
    this.items.set(key, updated);
    return { Attributes: structuredClone(updated) };
  }
}

const order = (item: Raw) => `${item.checkedAt}|${item.key}`;

/** Atlas as the checker sees it: endpoints per project, failures queued per project, calls counted. */
export class FakeAtlas {
  readonly endpoints = new Map<string, AtlasEndpoint[]>();
  readonly calls: Array<{ profile: string; groupId: string; cloudProvider: CloudProvider }> = [];
  readonly #failures = new Map<string, unknown[]>();
  latencyMs = 0;

  /** The AtlasProfiles stand-in: one listing client per profile. */
  readonly profiles = {
    withClient: <T>(profile: string, fn: (client: ListingApi) => Promise<T>): Promise<T> =>
      fn({ listEndpoints: (groupId, cloudProvider) => this.#list(profile, groupId, cloudProvider) }),
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
export function resetAws(): FakeTable {
  ddb.reset();
  eventBridge.reset();
  const table = new FakeTable();
  ddb.on(QueryCommand).callsFake((input: QueryCommand['input']) => table.query(input));
  ddb.on(UpdateCommand).callsFake((input: UpdateCommand['input']) => table.update(input));
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
    ledger: new Ledger({
      tableName: 'ledger',
      client: DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })),
      now,
    }),
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
