/**
 * `npm start`: the whole flow on this machine, with no AWS or Atlas account. Installs the local
 * AWS API implementations on first run, starts them and the Atlas simulator on free loopback
 * ports, creates the stack's resources from the stack's settings, runs the provisioner behind
 * an SQS event source and the status checker on a short schedule, publishes the requests and
 * follows each one to its final place.
 *
 *   npm start                                   the demo (events/demo/)
 *   npm start -- --file requests.jsonl          your own requests, one JSON body per line
 *   npm start -- --requesters                   two requesters, one refused a project outside its grant
 *   npm start -- --keep                         leave it running for npm run send/replay/status
 *   npm start -- --atlas-url URL --credentials secret.json --file requests.jsonl
 *                                               a real (or compatible) Atlas instead of the simulator
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { CLOUD_PROVIDERS } from '#atlas/types.ts';
import { integerFlag, isMain, parseCommand, runMain, UsageError } from '#infra/ops/cli.ts';
import type { SettingsInput } from '#infra/settings.ts';
import { FaultRuleSchema, ProbabilitySchema } from '#test/simulator/fault-schema.ts';
import { watchAncestors } from './ancestors.ts';
import { captureProcessOutput } from './capture.ts';
import { isInstalled, missingPrerequisites } from './emulators.ts';
import type { ProfileSecret } from './environment.ts';
import { type LocalFlow, startLocalFlow } from './flow.ts';
import { printable } from './printable.ts';
import { LiveView } from './view.ts';

/** The status checker's period in a local run. */
const CHECK_PERIOD_MS = 30_000;
const ROOT = resolve(import.meta.dirname, '../..');
const DEMO_REQUESTS = join(ROOT, 'events/demo/requests.jsonl');
const DEMO_SIMULATOR = join(ROOT, 'events/demo/simulator.json');
/** The requesters' demo: two requesters, their grants, and each one's requests. */
const DEMO_REQUESTERS = join(ROOT, 'events/demo/requesters.json');
/** The EventBridge front door's sample (`aws events put-events --entries file://...`), put on the bus with the demo. */
const FRONT_DOOR_SAMPLE = join(ROOT, 'events/put-events.json');
/** The front door as the sample expects it. */
const FRONT_DOOR = {
  requestEventBusName: 'platform-requests',
  requestEventSources: ['orders', 'com.acme.*'],
};

const USAGE = `usage: npm start [-- options]

  (no options)            run the demo: events/demo/requests.jsonl against the Atlas simulator
                          set up by events/demo/simulator.json
  --file FILE             provision your own requests: one JSON request body per line
                          (with no --file, events/put-events.json also goes through the EventBridge
                          front door: bus platform-requests, sources orders and com.acme.*)
  --requesters            run the requesters' demo instead: events/demo/requesters.json names two
                          requesters, each with its own queue and grant, and the requests each sends;
                          one asks for a project outside its grant and is refused (NOT_AUTHORIZED)
  --keep                  leave everything running (and print the environment for
                          npm run send / replay / status) until Ctrl-C
  --atlas-url URL         use this Atlas (or compatible server) instead of the simulator;
                          needs --credentials and --file
  --credentials FILE      the profile secret's JSON for --atlas-url:
                          {"ClientId": "...", "ClientSecret": "..."} or {"PublicKey": "...", "PrivateKey": "..."}
  --timeout SECONDS       give up (exit 1) when requests are still unfinished after this long (default 180)
  -h, --help              this text`;

/**
 * events/demo/requesters.json: the requesters (checked as settings by the run) and the request
 * each sends, in order.
 */
const RequesterDemoSchema = z.object({
  activationDelayMs: z.number().int().min(0).optional(),
  requesters: z.array(z.record(z.string(), z.unknown())).min(1),
  requests: z.array(z.object({ requester: z.string(), body: z.record(z.string(), z.unknown()) })).min(1),
});

/** events/demo/simulator.json: endpoints that exist before the run, and the faults to inject. */
const DemoSetupSchema = z.object({
  activationDelayMs: z.number().int().min(0).optional(),
  deletionDelayMs: z.number().int().min(0).optional(),
  /** The simulator's SimulatorOptions.seed (`seed` below is the endpoints seeded before the run). */
  randomSeed: z.number().int().optional(),
  failProbability: ProbabilitySchema.optional(),
  seed: z
    .array(
      z.object({
        groupId: z.string(),
        endpoint: z.object({
          cloudProvider: z.enum(CLOUD_PROVIDERS),
          regionName: z.string(),
          vpcRegionName: z.string().optional(),
          status: z.string(),
        }),
      }),
    )
    .default([]),
  faults: z.array(FaultRuleSchema).default([]),
});

const readJson = (file: string, what: string): unknown => {
  if (!existsSync(file)) throw new UsageError(`${what} ${file} does not exist`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`${what} ${file} is not JSON: ${(error as Error).message}`);
  }
};

/** One request body per non-blank line; bodies are sent as they are (invalid ones are the function's to reject). */
const readRequests = (file: string): string[] => {
  if (!existsSync(file)) throw new UsageError(`the requests file ${file} does not exist`);
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (lines.length === 0) throw new UsageError(`the requests file ${file} has no requests`);
  return lines;
};

/** The profile secret for --atlas-url; names the file and the keys it lacks, never the values. */
const readSecret = (file: string): ProfileSecret => {
  const parsed = z.record(z.string(), z.string()).safeParse(readJson(file, 'the credentials file'));
  if (!parsed.success) throw new UsageError(`the credentials file ${file} must be a JSON object of strings`);
  const keys = new Set(Object.keys(parsed.data).map((k) => k.toLowerCase()));
  const pair = (a: string, b: string) => keys.has(a) && keys.has(b);
  if (!pair('clientid', 'clientsecret') && !pair('publickey', 'privatekey')) {
    throw new UsageError(
      `the credentials file ${file} needs ClientId and ClientSecret (service account) or PublicKey and PrivateKey (API key)`,
    );
  }
  return parsed.data;
};

/** The command line; undefined for --help (the usage is printed). */
export function parseCommandLine(argv: string[]) {
  const values = parseCommand(
    {
      file: { type: 'string' },
      keep: { type: 'boolean', default: false },
      requesters: { type: 'boolean', default: false },
      'atlas-url': { type: 'string' },
      credentials: { type: 'string' },
      timeout: { type: 'string', default: '180' },
    },
    argv,
    USAGE,
  );
  if (!values) return undefined;
  const timeoutSeconds = integerFlag('timeout', values.timeout, 1) ?? 0;
  const atlasUrl = values['atlas-url'];
  if (atlasUrl !== undefined) {
    if (!URL.canParse(atlasUrl)) throw new UsageError(`--atlas-url must be a URL (given "${atlasUrl}")`);
    if (!values.credentials)
      throw new UsageError('--atlas-url needs --credentials FILE (the profile secret JSON)');
    if (!values.file) {
      throw new UsageError(
        '--atlas-url needs --file: the demo requests are for the simulator, not a real Atlas',
      );
    }
  } else if (values.credentials) {
    throw new UsageError('--credentials goes with --atlas-url');
  }
  if (values.requesters && (values.file !== undefined || atlasUrl !== undefined)) {
    throw new UsageError(
      '--requesters runs its own demo (events/demo/requesters.json) against the simulator: not with --file or --atlas-url',
    );
  }
  return {
    keep: values.keep,
    requesters: values.requesters,
    timeoutSeconds,
    file: values.file,
    atlas:
      atlasUrl && values.credentials ? { url: atlasUrl, secret: readSecret(values.credentials) } : undefined,
  };
}

/** How to reach this environment from another shell with `npm run send / status / replay`. */
export function opsInstructions(
  env: Pick<LocalFlow['environment'], 'awsEnvironment' | 'requestQueue' | 'dlq' | 'tableName' | 'frontDoor'>,
): string[] {
  return [
    ...Object.entries(env.awsEnvironment).map(([name, value]) => `export ${name}=${value}`),
    `export REQUEST_QUEUE_URL=${env.requestQueue.url} DLQ_URL=${env.dlq.url} LEDGER_TABLE=${env.tableName}`,
    // The commands read those variables (infra/ops/resources.ts): no flags needed for the queues and the table.
    'npm run send -- --group <projectId> --region <REGION>',
    'npm run status',
    'npm run replay -- --dry-run        # then without --dry-run',
    `aws events put-events --endpoint-url ${env.awsEnvironment.AWS_ENDPOINT_URL} --entries file://events/put-events.json` +
      `   # the front door: bus ${env.frontDoor?.busName}`,
  ];
}

/**
 * Puts the front door sample on the bus and waits until the provisioner has received it. Called
 * once the demo's own sends are registered, so following unknown messages adopts only this one.
 */
async function putThroughFrontDoor(flow: LocalFlow): Promise<void> {
  flow.tracker.followUnknown();
  const entries = JSON.parse(readFileSync(FRONT_DOOR_SAMPLE, 'utf8')) as PutEventsRequestEntry[];
  const out = await flow.environment.clients.eventBridge.send(new PutEventsCommand({ Entries: entries }));
  if (out.FailedEntryCount)
    throw new Error(`the front door refused the sample: ${JSON.stringify(out.Entries)}`);
  const ids = entries.map((e) => (JSON.parse(e.Detail ?? '{}') as { requestId?: string }).requestId);
  await flow.tracker.waitFor(() => ids.every((id) => flow.tracker.requests.some((r) => r.requestId === id)), {
    timeoutMs: 10_000,
    what: 'the request put on the front door to arrive in the request queue',
  });
}

/** Runs the flow; resolves with 0 when every request reached its final place. */
export async function main(argv: string[]): Promise<number> {
  const startedAt = Date.now();
  const options = parseCommandLine(argv);
  if (!options) return 0;
  const requesterDemo = options.requesters
    ? RequesterDemoSchema.parse(readJson(DEMO_REQUESTERS, "the requesters' demo"))
    : undefined;
  const requests = requesterDemo
    ? requesterDemo.requests.map((r) => ({ requester: r.requester, body: JSON.stringify(r.body) }))
    : readRequests(options.file ?? DEMO_REQUESTS).map((body) => ({ requester: '', body }));
  const demo =
    options.file === undefined && !requesterDemo
      ? DemoSetupSchema.parse(readJson(DEMO_SIMULATOR, 'the demo setup'))
      : undefined;
  const source = requesterDemo ? DEMO_REQUESTERS : (options.file ?? DEMO_REQUESTS);

  const missing = await missingPrerequisites();
  if (missing.length > 0) {
    console.error(`npm start needs, on this machine:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    return 1;
  }
  if (!isInstalled()) {
    console.log('First run: installing moto (Python venv) and ElasticMQ (Maven Central) into .local/ …');
  }

  const logDir = join(ROOT, '.local/logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `start-${new Date(startedAt).toISOString().replaceAll(':', '-')}.log`);
  const log = createWriteStream(logFile);
  const output = captureProcessOutput((text) => log.write(text));
  const say = (text = '') => output.write(`${text}\n`);
  const tty = process.stdout.isTTY === true;

  let flow: LocalFlow | undefined;
  let view: LiveView | undefined;
  const interrupted = Promise.withResolvers<void>();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => interrupted.resolve());
  // A signal to npm or its shell reaches no one below them: their end stops the run too.
  const stopWatching = watchAncestors((pid) => {
    say(`A process that started this run (${pid}) has ended: stopping.`);
    interrupted.resolve();
  });
  try {
    say(
      options.atlas
        ? `Starting ElasticMQ and moto; Atlas is ${options.atlas.url}`
        : 'Starting ElasticMQ, moto and the Atlas simulator …',
    );
    flow = await startLocalFlow({
      // The settings check the demo's requesters as they check a deployment's.
      settings: requesterDemo
        ? { requesters: requesterDemo.requesters as unknown as SettingsInput['requesters'] }
        : FRONT_DOOR,
      // The checker sweeps every 30 s, as a deployment's every few minutes: statuses reach the
      // requests within seconds of the simulator through the provisioner's follow-ups.
      checkPeriodMs: CHECK_PERIOD_MS,
      ...(options.atlas && { atlas: options.atlas }),
      ...(requesterDemo?.activationDelayMs !== undefined && {
        simulator: { activationDelayMs: requesterDemo.activationDelayMs },
      }),
      ...(demo && {
        simulator: {
          ...(demo.activationDelayMs !== undefined && { activationDelayMs: demo.activationDelayMs }),
          ...(demo.deletionDelayMs !== undefined && { deletionDelayMs: demo.deletionDelayMs }),
          ...(demo.randomSeed !== undefined && { seed: demo.randomSeed }),
          ...(demo.failProbability !== undefined && { failProbability: demo.failProbability }),
        },
      }),
    });
    const { environment, simulator } = flow;
    for (const { groupId, endpoint } of demo?.seed ?? []) simulator?.seedEndpoint(groupId, endpoint);
    for (const rule of demo?.faults ?? []) simulator?.injectFault(rule);
    if (requesterDemo) {
      say(`  SQS (ElasticMQ)   ${flow.servers.sqs.endpoint}`);
      for (const entry of environment.requesterEntries) {
        const projects = entry.projects === 'ALL' ? 'every project' : `project ${entry.projects.join(', ')}`;
        say(
          `  requester ${entry.name.padEnd(10)} queue ${entry.queueUrl}: may ${entry.actions.join(', ')} in ${projects}`,
        );
      }
    } else {
      say(`  SQS (ElasticMQ)   ${flow.servers.sqs.endpoint}   request queue ${environment.requestQueue.url}`);
    }
    say(`  AWS (moto)        ${flow.servers.aws.endpoint}   ledger table ${environment.tableName}`);
    if (!requesterDemo) {
      say(
        `  front door        EventBridge bus ${FRONT_DOOR.requestEventBusName} on moto, sources ` +
          `${FRONT_DOOR.requestEventSources.join(', ')} (relayed to ElasticMQ: moto delivers only to its own queues)`,
      );
    }
    say(`  Atlas             ${flow.atlasUrl}${simulator ? ' (simulator)' : ''}`);
    say(`  function logs     ${relative(process.cwd(), logFile)}`);
    say(
      `  settings          batch ${flow.settings.batchSize}, ${flow.settings.maxAttempts} attempts, ` +
        `redrive after ${environment.maxReceiveCount} receives, visibility ${environment.visibilityTimeoutSeconds} s, ` +
        `backoff ${flow.settings.backoffBaseSeconds}-${flow.settings.backoffCapSeconds} s`,
    );
    say(`Publishing ${requests.length} requests from ${relative(process.cwd(), source)}`);
    say();

    view = new LiveView(flow.tracker, {
      write: output.write,
      tty,
      startedAt,
      ...(tty && { rows: process.stdout.rows, columns: process.stdout.columns }),
    }).start();
    if (requesterDemo) {
      // Each request on its requester's queue, in the file's order.
      for (const { requester, body } of requests) await flow.send([body], { requester });
    } else {
      await flow.send(requests.map((r) => r.body));
    }
    if (demo) await putThroughFrontDoor(flow);

    const settled = flow.tracker.settled(options.timeoutSeconds * 1000);
    settled.catch(() => undefined);
    const outcome = await Promise.race([
      settled.then(
        () => 'settled' as const,
        () => 'timeout' as const,
      ),
      interrupted.promise.then(() => 'interrupted' as const),
    ]);
    view.stop();
    const extra = [
      ...(simulator ? [`Atlas simulator: ${simulator.endpoints().length} endpoints`] : []),
      ...flow.tracker.problems.slice(0, 5).map((problem) => `problem: ${problem}`),
    ];
    say(view.summary(extra));
    if (outcome === 'interrupted') return 130;
    if (outcome === 'timeout') {
      say(`Still unfinished after ${options.timeoutSeconds} s:`);
      for (const r of flow.tracker.unfinished()) say(printable(`  ${r.label}: ${r.place}`));
      say(`See the function logs in ${relative(process.cwd(), logFile)}`);
      if (!options.keep) return 1;
    }
    if (options.keep) {
      say('The environment stays up until Ctrl-C; new requests show up below. In another shell:');
      for (const line of opsInstructions(flow.environment)) say(`  ${line}`);
      say();
      flow.tracker.followUnknown();
      new LiveView(flow.tracker, { write: output.write, tty: false, startedAt, fromNow: true }).start();
      await interrupted.promise;
    }
    return outcome === 'settled' ? 0 : 1;
  } finally {
    stopWatching();
    view?.stop();
    say('Stopping …');
    await flow?.stop();
    output.restore();
    await new Promise((ok) => log.end(ok));
  }
}

if (isMain(import.meta)) {
  await runMain(() => main(process.argv.slice(2)), { usage: USAGE });
  // Whatever a stopped server left behind must not keep the process alive.
  process.exit();
}
