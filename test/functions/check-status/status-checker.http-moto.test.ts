/**
 * The real status checker handler module, loaded with its deployment environment, over real
 * HTTP to the Atlas simulator (OAuth service account) and the real AWS SDK to moto (the ledger
 * table, the profile secret, and an EventBridge rule delivering status events to a queue), all
 * started here once. Atlas calls are counted on the simulator's own request log.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { ScheduledEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialsStore } from '#atlas/credentials.ts';
import { AtlasProfiles } from '#atlas/profiles.ts';
import { ATLAS_REGIONS } from '#atlas/types.ts';
import { type CheckSummary, StatusChecker } from '#check-status/status-checker.ts';
import { StatusEvents } from '#events/publisher.ts';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import { Ledger, type LedgerItem, NEVER_CHECKED } from '#ledger/ledger.ts';
import { TRACKED } from '#ledger/schema.ts';
import { naturalKey } from '#messages/request.ts';
import { type CapturedOutput, captureProcessOutput } from '#test/local/capture.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, type LocalEnvironment, localSettings } from '#test/local/environment.ts';
import { CHECK_STATUS_HANDLER } from '#test/local/flow.ts';
import { loadHandler } from '#test/local/in-process-invoker.ts';
import type { LambdaHandler } from '#test/local/invocation.ts';
import { newGroupId, startAtlasSimulator } from '#test/simulator/index.ts';
import type { AtlasSimulator, SimEndpoint } from '#test/simulator/types.ts';
import { lambdaContext } from '#test/support/sqs-events.ts';

const account = {
  clientId: 'mdb_sa_id_checker',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const DAY_MS = 86_400_000;

let sim: AtlasSimulator;
let moto: Moto;
let env: LocalEnvironment;
let handler: LambdaHandler<ScheduledEvent, CheckSummary>;
let capture: CapturedOutput;
const output: string[] = [];

const scheduledEvent = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../../events/scheduled.json'), 'utf8'),
) as ScheduledEvent;

beforeAll(async () => {
  capture = captureProcessOutput((text) => output.push(text));
  [sim, moto] = await Promise.all([
    startAtlasSimulator({
      serviceAccounts: [account],
      rateLimit: false,
      activationDelayMs: 600_000,
      deletionDelayMs: 600_000,
    }),
    startMoto(),
  ]);
  env = await createLocalEnvironment({
    settings: localSettings({ atlasBaseUrl: sim.url }),
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    name: 'check-status-it',
    secrets: { default: { ClientId: account.clientId, ClientSecret: account.clientSecret } },
  });
  handler = await loadHandler<ScheduledEvent, CheckSummary>(CHECK_STATUS_HANDLER, env.checkStatusEnvironment);
});

afterAll(async () => {
  capture?.restore();
  env?.close();
  await Promise.all([sim?.close(), moto?.stop()]);
});

beforeEach(async () => {
  // Not sim.reset(): that would revoke the warm client's token and add a 401 and a retry to the counts.
  sim.clearFaults();
  await clearLedger();
  await drainStatusEvents();
});

// ---- the ledger and the events, as the provisioner and a requester see them ----

/** Puts the ledger item the provisioner would have left for a simulator endpoint. */
async function track(
  groupId: string,
  endpoint: SimEndpoint,
  fields: Partial<LedgerItem> & Pick<LedgerItem, 'status'>,
): Promise<LedgerItem> {
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
  const region = { groupId, cloudProvider: 'AWS' as const, regionName: endpoint.regionName as 'US_EAST_1' };
  const item: LedgerItem = {
    key: naturalKey({ ...region, vpcRegionName: endpoint.vpcRegionName as 'US_EAST_1' }),
    ...region,
    vpcRegionName: endpoint.vpcRegionName,
    profile: 'default',
    action: 'create',
    requesters: { default: [`req-${endpoint.id}`] },
    endpointId: endpoint.id,
    statusSince: ago(60_000),
    tracked: TRACKED,
    checkedAt: NEVER_CHECKED,
    createdAt: ago(120_000),
    updatedAt: ago(60_000),
    ...fields,
  };
  // Stored as an item written before requesters had names: its requestIds a string set.
  const { requesters, ...rest } = item;
  await env.clients.dynamo.send(
    new PutCommand({ TableName: env.tableName, Item: { ...rest, requestIds: new Set(requesters.default) } }),
  );
  return item;
}

async function stored(key: string): Promise<Record<string, unknown> | undefined> {
  const out = await env.clients.dynamo.send(
    new GetCommand({ TableName: env.tableName, Key: { key }, ConsistentRead: true }),
  );
  return out.Item;
}

async function clearLedger(): Promise<void> {
  const { Items = [] } = await env.clients.dynamo.send(
    new ScanCommand({
      TableName: env.tableName,
      ProjectionExpression: '#k',
      ExpressionAttributeNames: { '#k': 'key' },
    }),
  );
  for (let i = 0; i < Items.length; i += 25) {
    await env.clients.dynamo.send(
      new BatchWriteCommand({
        RequestItems: {
          [env.tableName]: Items.slice(i, i + 25).map((item) => ({
            DeleteRequest: { Key: { key: item.key } },
          })),
        },
      }),
    );
  }
}

/** The status events delivered so far through the EventBridge rule, each checked against the schema. */
async function drainStatusEvents(): Promise<StatusChangedDetail[]> {
  const details: StatusChangedDetail[] = [];
  for (;;) {
    const { Messages = [] } = await env.clients.eventsSqs.send(
      new ReceiveMessageCommand({ QueueUrl: env.statusEventQueue.url, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return details;
    for (const m of Messages) {
      const event = JSON.parse(m.Body ?? '{}');
      expect(event).toMatchObject({
        source: 'atlas.backup-private-endpoints',
        'detail-type': 'Backup Private Endpoint Status Changed',
      });
      details.push(StatusChangedDetailSchema.parse(event.detail));
    }
    await env.clients.eventsSqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: env.statusEventQueue.url,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}

const listRequests = (groupId: string) =>
  sim.requests.filter((r) => r.operation === 'list' && r.groupId === groupId);

const seed = (groupId: string, status: string, n = 0, errorMessage?: string) =>
  sim.seedEndpoint(groupId, {
    cloudProvider: 'AWS',
    regionName: ATLAS_REGIONS[n % ATLAS_REGIONS.length] ?? 'US_EAST_1',
    vpcRegionName: ATLAS_REGIONS[Math.floor(n / ATLAS_REGIONS.length)] ?? 'US_EAST_1',
    status,
    ...(errorMessage !== undefined && { errorMessage }),
  });

describe('check-status handler against the Atlas simulator and moto', () => {
  it('follows every endpoint with one list call per project and announces each change', async () => {
    // Prepare
    const a = newGroupId();
    const b = newGroupId();
    const activated = await track(a, seed(a, 'INITIATING', 0), { status: 'INITIATING' });
    const failed = await track(a, seed(a, 'PENDING_ACCEPTANCE', 1), { status: 'PENDING_ACCEPTANCE' });
    const steady = await track(a, seed(a, 'ACTIVE', 2), { status: 'ACTIVE' });
    const drifted = await track(a, seed(a, 'ACTIVE', 3), { status: 'ACTIVE' });
    const deleted = await track(b, seed(b, 'DELETING', 4), { status: 'DELETING', action: 'delete' });
    const recreating = await track(b, seed(b, 'ACTIVE', 5), { status: 'ACTIVE' });
    const unknown = await track(b, seed(b, 'INITIATING', 6), { status: 'INITIATING' });
    sim.setEndpointStatus(a, activated.endpointId ?? '', 'ACTIVE');
    sim.setEndpointStatus(a, failed.endpointId ?? '', 'FAILED', 'The interface endpoint was rejected');
    sim.removeEndpoint(a, drifted.endpointId ?? '');
    sim.removeEndpoint(b, deleted.endpointId ?? '');
    sim.setEndpointStatus(b, recreating.endpointId ?? '', 'PENDING_RECREATION');
    sim.setEndpointStatus(b, unknown.endpointId ?? '', 'MIGRATING');

    // Act
    const summary = await handler(scheduledEvent, lambdaContext());

    // Assess
    expect(summary).toEqual({
      checked: 7,
      changed: 6,
      stuck: 0,
      missing: 1,
      skipped: 0,
      projects: 2,
      duplicatesDeleted: 0,
      stoppedEarly: false,
    });
    expect(listRequests(a)).toHaveLength(1);
    expect(listRequests(b)).toHaveLength(1);
    expect(sim.requests.filter((r) => r.operation === 'get')).toEqual([]);
    expect(sim.requests.flatMap((r) => r.specViolations)).toEqual([]);

    const statuses = await Promise.all(
      [activated, failed, steady, drifted, deleted, recreating, unknown].map(async (i) => {
        const item = await stored(i.key);
        return [item?.status, item?.tracked];
      }),
    );
    expect(statuses).toEqual([
      ['ACTIVE', 'OPEN'],
      ['FAILED', 'OPEN'], // followed: its key went back to the provisioner to be created anew
      ['ACTIVE', 'OPEN'],
      ['MISSING', undefined],
      ['DELETED', undefined],
      ['PENDING_RECREATION', 'OPEN'],
      ['MIGRATING', 'OPEN'],
    ]);
    expect((await stored(failed.key))?.atlasErrorMessage).toBe('The interface endpoint was rejected');

    const events = await drainStatusEvents();
    const byKey = new Map(events.map((e) => [e.naturalKey, e]));
    expect(events).toHaveLength(6);
    expect(byKey.get(activated.key)).toMatchObject({
      outcome: 'STATUS_CHANGED',
      requester: 'default',
      requestIds: activated.requesters.default,
      groupId: a,
      cloudProvider: 'AWS',
      regionName: activated.regionName,
      vpcRegionName: activated.vpcRegionName,
      action: 'create',
      endpointId: activated.endpointId,
      previousStatus: 'INITIATING',
      status: 'ACTIVE',
    });
    expect(byKey.get(failed.key)).toMatchObject({
      outcome: 'STATUS_CHANGED',
      status: 'FAILED',
      errorMessage: 'The interface endpoint was rejected',
    });
    expect(byKey.get(drifted.key)).toMatchObject({ outcome: 'MISSING', previousStatus: 'ACTIVE' });
    expect(byKey.get(deleted.key)).toMatchObject({ outcome: 'DELETED', action: 'delete', status: 'DELETED' });
    expect(byKey.get(recreating.key)).toMatchObject({ status: 'PENDING_RECREATION' });
    expect(byKey.get(unknown.key)).toMatchObject({ status: 'MIGRATING' });
    expect(byKey.has(steady.key)).toBe(false);
  });

  it("reads every page of a project's listing in one list call per run", async () => {
    // Prepare: 520 endpoints in Atlas span two pages of 500; the ledger follows the first and the last.
    const group = newGroupId();
    const endpoints = Array.from({ length: 520 }, (_, n) => seed(group, 'ACTIVE', n));
    const first = await track(group, endpoints[0] as SimEndpoint, { status: 'ACTIVE' });
    const last = await track(group, endpoints[519] as SimEndpoint, { status: 'ACTIVE' });

    // Act
    const summary = await handler(scheduledEvent, lambdaContext());

    // Assess
    expect(summary).toMatchObject({ checked: 2, changed: 0, missing: 0, projects: 1 });
    expect(listRequests(group).map((r) => r.query.pageNum)).toEqual(['1', '2']);
    expect((await stored(first.key))?.status).toBe('ACTIVE');
    expect((await stored(last.key))?.status).toBe('ACTIVE');
    expect(await drainStatusEvents()).toEqual([]);
  });

  it.each([
    { status: 429, errorCode: 'RATE_LIMITED' },
    { status: 503, errorCode: 'SERVICE_UNAVAILABLE' },
  ])(
    'leaves a project that answers $status untouched and announces its change on the next run',
    async (fault) => {
      // Prepare
      const limited = newGroupId();
      const healthy = newGroupId();
      const waiting = await track(limited, seed(limited, 'ACTIVE'), {
        status: 'INITIATING',
        checkedAt: '2026-01-01T00:00:00.000Z',
      });
      const other = await track(healthy, seed(healthy, 'ACTIVE'), { status: 'INITIATING' });
      sim.injectFault({
        fault: { kind: 'status', ...fault, retryAfterSeconds: 1 },
        operations: ['list'],
        groupId: limited,
        times: 1,
      });

      // Act
      const first = await handler(scheduledEvent, lambdaContext());
      const firstEvents = await drainStatusEvents();
      const second = await handler(scheduledEvent, lambdaContext());

      // Assess
      expect(first).toMatchObject({ checked: 1, changed: 1, skipped: 1 });
      expect(firstEvents.map((e) => e.naturalKey)).toEqual([other.key]);
      expect(second).toMatchObject({ checked: 2, changed: 1, skipped: 0 });
      expect((await drainStatusEvents()).map((e) => [e.naturalKey, e.status])).toEqual([
        [waiting.key, 'ACTIVE'],
      ]);
      expect(listRequests(limited).map((r) => r.status)).toEqual([fault.status, 200]);
    },
  );

  it('reports an endpoint stuck in PENDING_ACCEPTANCE past its deadline once', async () => {
    const group = newGroupId();
    const since = new Date(Date.now() - 2 * DAY_MS).toISOString();
    const item = await track(group, seed(group, 'PENDING_ACCEPTANCE'), {
      status: 'PENDING_ACCEPTANCE',
      statusSince: since,
    });

    const first = await handler(scheduledEvent, lambdaContext());
    const second = await handler(scheduledEvent, lambdaContext());

    expect(first).toMatchObject({ stuck: 1 });
    expect(second).toMatchObject({ checked: 1, stuck: 0 });
    expect(await stored(item.key)).toMatchObject({ status: 'PENDING_ACCEPTANCE', statusSince: since });
    expect((await stored(item.key))?.stuckAt).toEqual(expect.any(String));
    expect(await drainStatusEvents()).toEqual([
      expect.objectContaining({ outcome: 'STUCK', status: 'PENDING_ACCEPTANCE', statusSince: since }),
    ]);
  });
});

describe('StatusChecker paging the ledger index in DynamoDB (moto)', () => {
  it('checks each item once across ledger pages, listing each project once', async () => {
    // Prepare
    const groups = [newGroupId(), newGroupId(), newGroupId()];
    const items: LedgerItem[] = [];
    for (let n = 0; n < 7; n++) {
      const group = groups[n % 3] as string;
      items.push(
        await track(group, seed(group, 'ACTIVE', n), {
          status: 'ACTIVE',
          checkedAt: new Date(Date.now() - (100 - n) * 60_000).toISOString(),
        }),
      );
    }
    const { settings } = env;
    const checker = new StatusChecker({
      ledger: new Ledger({ tableName: env.tableName, client: env.clients.dynamo }),
      atlas: new AtlasProfiles({
        credentials: new CredentialsStore({
          prefix: settings.secretPrefix,
          maxAgeSeconds: 60,
          allowedProfiles: settings.allowedProfiles,
          client: env.clients.secrets,
        }),
        baseUrl: sim.url,
        apiVersion: settings.atlasApiVersion,
        timeoutMs: settings.atlasTimeoutMs,
      }),
      events: new StatusEvents({
        busName: settings.eventBusName,
        source: settings.eventSource,
        client: env.clients.eventBridge,
      }),
      logger: new Logger({ serviceName: 'status-checker', logLevel: 'SILENT' }),
      // Never flushed: the figures do not need them.
      metrics: new Metrics({ namespace: 'unused', serviceName: 'status-checker' }),
      deadlines: { pendingAcceptanceMinutes: 1_440, inProgressMinutes: 60 },
      projectConcurrency: 2,
      safetyMarginMs: 1_000,
      pageSize: 2,
    });
    const before = Date.now();

    // Act
    const summary = await checker.run({ remainingMs: () => 60_000 });

    // Assess
    expect(summary).toMatchObject({ checked: 7, changed: 0, skipped: 0, projects: 3 });
    for (const group of groups) expect(listRequests(group)).toHaveLength(1);
    for (const item of items) {
      expect(Date.parse(String((await stored(item.key))?.checkedAt))).toBeGreaterThanOrEqual(before);
    }
  });
});

describe('npm run status against the ledger in moto', () => {
  it('prints the items the checker keeps, of one project with --group', async () => {
    // Prepare
    const group = newGroupId();
    const other = newGroupId();
    const item = await track(group, seed(group, 'ACTIVE'), { status: 'PENDING_ACCEPTANCE' });
    await track(other, seed(other, 'ACTIVE'), { status: 'ACTIVE' });
    await handler(scheduledEvent, lambdaContext());

    // Act
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'infra/ops/status.ts', '--table', env.tableName, '--group', group],
      { cwd: resolve(import.meta.dirname, '../../..'), env: { ...process.env, ...env.awsEnvironment } },
    );

    // Assess
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NATURAL KEY\s+ACTION\s+STATUS\s+ENDPOINT\s+AGE\s+LAST ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${item.key}\\s+create\\s+ACTIVE\\s+${item.endpointId}\\s+\\d+s$`));
    expect(lines.at(-1)).toBe(`1 item(s) in ${env.tableName}`);
  });
});
