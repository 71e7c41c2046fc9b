/**
 * The status checker's figures (issue 4): 10,000 tracked endpoints across 200 projects, seeded
 * in the in-process Atlas simulator and batch-written to the ledger in moto.
 *
 * 1. One scheduled run of the real handler module with the deployment's timeout (120 s): Atlas
 *    list requests per project (goal: one per project page), items checked, wall time, and
 *    whether it stopped safely before the timeout. moto is far slower than DynamoDB (about 1 s
 *    per index page and 15-25 ms per write, one write per item), so against moto a run cannot
 *    check all 10,000 items; it stops at the safety margin and the next run continues.
 * 2. The same full check with the ledger's writes answered at once (the index still read from
 *    moto): the checker's, Atlas's and the ledger reads' share, all 10,000 in one run.
 *
 * Run alone with `npx tsx test/bench/check-status.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { CredentialsStore } from '#atlas/credentials.ts';
import { AtlasProfiles } from '#atlas/profiles.ts';
import { ATLAS_REGIONS } from '#atlas/types.ts';
import { type CheckSummary, StatusChecker } from '#check-status/status-checker.ts';
import { resolveSettings } from '#infra/settings.ts';
import { Ledger, type LedgerItem, NEVER_CHECKED } from '#ledger/ledger.ts';
import { TRACKED } from '#ledger/schema.ts';
import { naturalKey } from '#messages/request.ts';
import { readEnvironment } from '#runtime/environment.ts';
import { captureProcessOutput } from '#test/local/capture.ts';
import { startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, type LocalEnvironment, localSettings } from '#test/local/environment.ts';
import { CHECK_STATUS_HANDLER, newServiceAccount } from '#test/local/flow.ts';
import { newGroupId, startAtlasSimulator } from '#test/simulator/index.ts';
import type { AtlasSimulator } from '#test/simulator/types.ts';
import { lambdaContext } from '#test/support/sqs-events.ts';

const PROJECTS = 200;
const PER_PROJECT = 50;
/** Every 20th endpoint has moved on in Atlas since the last check (INITIATING -> ACTIVE): events too. */
const CHANGED_EVERY = 20;

export interface CheckRunFigures {
  checked: number;
  changed: number;
  /** Projects listed in the run. */
  projects: number;
  /** Atlas list requests of the run (every page counted; token requests not). */
  atlasListRequests: number;
  /** atlasListRequests / projects: 1 when each project's single page is listed once. */
  atlasRequestsPerProject: number;
  wallMs: number;
  stoppedEarly: boolean;
}

export interface CheckStatusFigures {
  endpoints: number;
  projects: number;
  timeoutSeconds: number;
  /** The real handler, ledger in moto, the deployment's timeout. */
  handlerRun: CheckRunFigures;
  /** The same check with the ledger's writes answered at once, no time limit. */
  withoutLedgerWrites: CheckRunFigures;
}

type Handler = (event: ScheduledEvent, context: Context) => Promise<CheckSummary>;

const scheduledEvent = (): ScheduledEvent => ({
  version: '0',
  id: crypto.randomUUID(),
  'detail-type': 'Scheduled Event',
  source: 'aws.scheduler',
  account: '000000000000',
  time: new Date().toISOString(),
  region: 'us-east-1',
  resources: ['arn:aws:scheduler:us-east-1:000000000000:schedule/default/bench'],
  detail: {},
});

export async function run(): Promise<CheckStatusFigures> {
  const account = newServiceAccount();
  const [sim, moto] = await Promise.all([
    startAtlasSimulator({
      serviceAccounts: [account],
      rateLimit: false,
      activationDelayMs: 3_600_000,
      deletionDelayMs: 3_600_000,
    }),
    startMoto(),
  ]);
  const timeoutSeconds = resolveSettings().checkTimeoutSeconds;
  const env = await createLocalEnvironment({
    settings: localSettings({ atlasBaseUrl: sim.url, checkTimeoutSeconds: timeoutSeconds }),
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    name: 'bench-check',
    secrets: { default: { ClientId: account.clientId, ClientSecret: account.clientSecret } },
  });
  const saved = { ...process.env };
  Object.assign(process.env, env.checkStatusEnvironment);
  // The handler logs and prints metrics: keep them out of the figures.
  const output = captureProcessOutput(() => undefined);
  const print = (line: string) => output.write(`${line}\n`);
  try {
    const items = seed(sim);
    const seeding = performance.now();
    await writeLedger(env, items);
    print(`seeded ${items.length} ledger items in moto in ${seconds(performance.now() - seeding)}`);

    const { handler } = (await import(pathToFileURL(CHECK_STATUS_HANDLER).href)) as { handler: Handler };
    const handlerRun = await measure(sim, () =>
      handler(
        scheduledEvent(),
        lambdaContext({ getRemainingTimeInMillis: remainingOf(timeoutSeconds * 1000) }),
      ),
    );
    const reads = { ms: 0, pages: 0 };
    const checker = checkerWithoutLedgerWrites(env, reads);
    const withoutLedgerWrites = await measure(sim, () => checker.run({ remainingMs: () => 900_000 }));

    const describe = (r: CheckRunFigures) =>
      `${r.checked} checked (${r.changed} changed) in ${r.projects} projects, ${r.atlasListRequests} Atlas list ` +
      `requests = ${r.atlasRequestsPerProject.toFixed(2)} per project (goal 1: one per project page), ` +
      `${seconds(r.wallMs)}${r.stoppedEarly ? ', stopped early at the safety margin' : ''}`;
    print(`${items.length} endpoints in ${PROJECTS} projects:`);
    print(`  one run of the handler, ledger in moto, timeout ${timeoutSeconds} s: ${describe(handlerRun)}`);
    print(`  one run with the ledger's writes answered at once: ${describe(withoutLedgerWrites)}`);
    print(`    of which reading ${reads.pages} pages of the ledger index from moto: ${seconds(reads.ms)}`);
    return { endpoints: items.length, projects: PROJECTS, timeoutSeconds, handlerRun, withoutLedgerWrites };
  } finally {
    output.restore();
    for (const name of Object.keys(env.checkStatusEnvironment)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    env.close();
    await Promise.all([sim.close(), moto.stop()]);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function measure(sim: AtlasSimulator, check: () => Promise<CheckSummary>): Promise<CheckRunFigures> {
  const from = sim.requests.length;
  const started = performance.now();
  const summary = await check();
  const wallMs = performance.now() - started;
  const atlasListRequests = sim.requests.slice(from).filter((r) => r.operation === 'list').length;
  return {
    checked: summary.checked,
    changed: summary.changed,
    projects: summary.projects,
    atlasListRequests,
    atlasRequestsPerProject: atlasListRequests / Math.max(1, summary.projects),
    wallMs,
    stoppedEarly: summary.stoppedEarly,
  };
}

/** A Lambda clock: the time left of an invocation with this timeout, counted from the first call. */
function remainingOf(timeoutMs: number): () => number {
  let deadline: number | undefined;
  return () => {
    deadline ??= Date.now() + timeoutMs;
    return Math.max(0, deadline - Date.now());
  };
}

/** The projects' endpoints in the simulator, and the ledger items that follow them. */
function seed(sim: AtlasSimulator): LedgerItem[] {
  const items: LedgerItem[] = [];
  const now = new Date().toISOString();
  for (let p = 0; p < PROJECTS; p++) {
    const groupId = newGroupId();
    for (let n = 0; n < PER_PROJECT; n++) {
      const regionName = ATLAS_REGIONS[n % ATLAS_REGIONS.length] ?? 'US_EAST_1';
      const vpcRegionName = ATLAS_REGIONS[Math.floor(n / ATLAS_REGIONS.length)] ?? 'US_EAST_1';
      const endpoint = sim.seedEndpoint(groupId, {
        cloudProvider: 'AWS',
        regionName,
        vpcRegionName,
        status: 'ACTIVE',
      });
      items.push({
        key: naturalKey({ groupId, cloudProvider: 'AWS', regionName, vpcRegionName }),
        groupId,
        cloudProvider: 'AWS',
        regionName,
        vpcRegionName,
        profile: 'default',
        action: 'create',
        requesters: { default: [`bench-${items.length}`] },
        status: items.length % CHANGED_EVERY === 0 ? 'INITIATING' : 'ACTIVE',
        statusSince: now,
        endpointId: endpoint.id,
        tracked: TRACKED,
        checkedAt: NEVER_CHECKED,
        createdAt: now,
        updatedAt: now,
      });
    }
  }
  return items;
}

async function writeLedger(env: LocalEnvironment, items: LedgerItem[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    const out = await env.clients.dynamo.send(
      new BatchWriteCommand({
        RequestItems: {
          [env.tableName]: items.slice(i, i + 25).map((item) => ({ PutRequest: { Item: item } })),
        },
      }),
    );
    if (Object.keys(out.UnprocessedItems ?? {}).length > 0)
      throw new Error('moto left ledger items unprocessed');
  }
}

/** The handler's checker, configured the same, with the ledger's index read from moto and its writes answered at once. */
function checkerWithoutLedgerWrites(
  env: LocalEnvironment,
  reads: { ms: number; pages: number },
): StatusChecker {
  const config = readEnvironment('checkStatus', env.checkStatusEnvironment);
  const ledger = new Ledger({ tableName: env.tableName, client: env.clients.dynamo });
  return new StatusChecker({
    ledger: {
      listTracked: async (options) => {
        const started = performance.now();
        const page = await ledger.listTracked(options);
        reads.ms += performance.now() - started;
        reads.pages += 1;
        return page;
      },
      recordCheck: async () => undefined,
      forgetAnswer: async () => undefined,
      confirmUnchanged: async () => new Date().toISOString(),
      clearOutbox: async () => undefined,
    },
    atlas: new AtlasProfiles({
      credentials: new CredentialsStore({
        prefix: config.secretPrefix,
        maxAgeSeconds: config.secretMaxAgeSeconds,
        allowedProfiles: config.allowedProfiles,
        client: env.clients.secrets,
      }),
      baseUrl: config.atlasBaseUrl,
      apiVersion: config.atlasApiVersion,
      timeoutMs: config.atlasTimeoutMs,
    }),
    events: { publish: async () => undefined },
    logger: new Logger({ serviceName: 'status-checker', logLevel: 'SILENT' }),
    // Never flushed: the figures do not need them.
    metrics: new Metrics({ namespace: 'unused', serviceName: 'status-checker' }),
    deadlines: {
      pendingAcceptanceMinutes: config.pendingAcceptanceDeadlineMinutes,
      inProgressMinutes: config.inProgressDeadlineMinutes,
    },
    projectConcurrency: config.projectConcurrency,
    safetyMarginMs: config.safetyMarginMs,
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
