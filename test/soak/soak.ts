/**
 * `npm run soak`: the whole local flow (ElasticMQ, moto, the provisioner behind its SQS event
 * source, the status checker on a schedule) against an Atlas simulator that misbehaves at random
 * from a seed: 5xx and 429 on any Admin API call, creates whose answer is lost or that land after
 * the client gave up, and duplicate messages. Publishes N create requests over P projects, waits
 * for every request to reach a final place (or the timeout), lets the checker run a few more
 * periods, then prints what is left: requests with no final place, natural keys with more than
 * one endpoint, endpoints no ledger item knows. Exit 0 only when all three are 0.
 *
 *   npm run soak -- --requests 300 --seed 1 --projects 100 --timeout-minutes 10
 *
 * The simulator's random and the requests are seeded; the interleaving of the functions is not,
 * so two runs with one seed meet the same kinds of faults in the same proportions, not the same
 * requests. Everything listens on and talks to loopback only. Not part of `npm test`.
 */
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATLAS_REGIONS, type AtlasRegion } from '#atlas/types.ts';
import { integerFlag, isMain, numberFlag, parseCommand, runMain, UsageError } from '#infra/ops/cli.ts';
import { captureProcessOutput } from '#test/local/capture.ts';
import { missingPrerequisites } from '#test/local/emulators.ts';
import type { FaultKind } from '#test/local/fault-proxy.ts';
import type { OutageService } from '#test/local/flow.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { replayDlq } from '#test/local/replay.ts';
import type { RequestTracker, TrackedRequest } from '#test/local/tracker.ts';
import { API_OPERATIONS } from '#test/simulator/fault-schema.ts';
import { seededRandom } from '#test/simulator/random.ts';
import type { AtlasSimulator, FaultRule } from '#test/simulator/types.ts';
import { ledgerItems, sharedSoak } from './shared.ts';

const USAGE = `usage: npm run soak -- [options]
  --requests N          create requests to publish (default 1000; 200 with --outage)
  --seed S              seed of the requests and of the simulator's faults (default 1)
  --projects P          Atlas projects the requests spread over (default 100)
  --timeout-minutes M   give up waiting after M minutes in all (default 15)
  --fail-probability F  also let new endpoints turn FAILED with probability F (default 0)
  --late-factors A,B,…  lateCreate lands A, B, … times the Atlas timeout after the create
                        arrived, one rule each sharing the 2% (default 1.5,2,3)
  --outage S:SEC[:KIND],…
                        take dependencies down one after another, the first 5 s after
                        publishing starts, 10 s apart: S is events, dynamodb,
                        secretsmanager, sqs or atlas; KIND error, throttle or partial
                        (default: events partial, dynamodb throttle, others error; atlas
                        always 503). Requests are sent in waves throughout, 5% invalid.
                        Once all are final, the DLQ is replayed once, as an operator would
  --outage-start SEC    with --outage: the first outage starts SEC s after publishing does (default 5)
  --tail-seconds SEC    with --outage: requests keep flowing SEC s after the last outage (default 5)
  --keep-dlq            with --outage: leave the DLQ as the outages left it (no replay)
  --log FILE            where the functions' logs go (default: a file in the temp directory)
  --shared              instead: several requesters send create and delete sequences for keys
                        they share, delivered out of order (see test/soak/shared.ts)
  --keys K              with --shared: keys shared (default 60)
  --requesters R        with --shared: requesters (default 3)
  --shuffle-seconds S   with --shared: each message delayed 0-S s (default 4)
  -h, --help            this text`;

/** Local settings short enough for a run of a few minutes on 2 cores. */
const ATLAS_TIMEOUT_MS = 1000;
const SETTINGS = {
  atlasTimeoutMs: ATLAS_TIMEOUT_MS,
  backoffBaseSeconds: 1,
  backoffCapSeconds: 5,
  maxAttempts: 8,
} as const;
const CHECK_PERIOD_MS = 1000;
const ACTIVATION_DELAY_MS = 1500;
const DELETION_DELAY_MS = 1500;
/** Checker periods to wait after the last request settled, for late landings and clean-ups. */
const EXTRA_CHECK_PERIODS = 3;

/** Share of Admin API requests (any operation) hit by each fault; creates also by the create-only ones. */
const FAULTS = {
  status500: 0.05,
  status503: 0.05,
  status429: 0.05,
  lostResponse: 0.02,
  lateCreate: 0.02,
};
/** By default lateCreate lands this many times atlasTimeoutMs after the request: after the client gave up. */
const LATE_FACTORS = [1.5, 2, 3];
/** Share of requests for a key an earlier request already asked for (another requestId). */
const REPEATED_KEY_SHARE = 0.05;
/** Share of messages sent twice, body unchanged (a producer retry). */
const DUPLICATE_MESSAGE_SHARE = 0.02;

const KEYS_PER_PROJECT = ATLAS_REGIONS.length * ATLAS_REGIONS.length;

/** A project's k-th distinct key: each region on its own first, then cross-region pairs. */
function keyAt(k: number): { regionName: AtlasRegion; vpcRegionName?: AtlasRegion } {
  const n = ATLAS_REGIONS.length;
  const regionName = ATLAS_REGIONS[k % n] as AtlasRegion;
  const vpcRegionName = ATLAS_REGIONS[((k % n) + Math.floor(k / n)) % n] as AtlasRegion;
  return vpcRegionName === regionName ? { regionName } : { regionName, vpcRegionName };
}

/** A dependency taken down during the soak, for `seconds`. */
export interface PlannedOutage {
  service: OutageService;
  seconds: number;
  kind: FaultKind;
}

const OUTAGE_SERVICES: readonly OutageService[] = ['events', 'dynamodb', 'secretsmanager', 'sqs', 'atlas'];
const DEFAULT_KIND: Record<OutageService, FaultKind> = {
  events: 'partial',
  dynamodb: 'throttle',
  secretsmanager: 'error',
  sqs: 'error',
  atlas: 'error',
};
/** The first outage starts this long after publishing starts; each next one this long after the last ended. */
const OUTAGE_START_MS = 5_000;
const OUTAGE_GAP_MS = 10_000;
/** With outages, requests go out in waves this far apart, until this long after the last outage. */
const WAVE_MS = 2_500;
const AFTER_LAST_OUTAGE_MS = 5_000;
/** With outages, this share of requests is invalid (no regionName): each must end rejected. */
const INVALID_SHARE = 0.05;

/** `--outage events:30,dynamodb:30:error`. */
export function parseOutages(spec: string): PlannedOutage[] {
  return spec.split(',').map((part) => {
    const [service = '', seconds = '', kind] = part.split(':');
    if (!OUTAGE_SERVICES.includes(service as OutageService)) {
      throw new UsageError(
        `--outage: the service must be one of ${OUTAGE_SERVICES.join(', ')} (given "${part}")`,
      );
    }
    const n = Number(seconds);
    if (seconds.trim() === '' || !(n > 0)) {
      throw new UsageError(`--outage: the length must be a number of seconds over 0 (given "${part}")`);
    }
    if (kind !== undefined && !['error', 'throttle', 'partial'].includes(kind)) {
      throw new UsageError(`--outage: the kind must be error, throttle or partial (given "${part}")`);
    }
    return {
      service: service as OutageService,
      seconds: n,
      kind: (kind as FaultKind | undefined) ?? DEFAULT_KIND[service as OutageService],
    };
  });
}

interface Options {
  outages?: PlannedOutage[];
  /** With outages: when the first starts and how long requests flow after the last, ms. */
  outageStartMs: number;
  tailMs: number;
  /** With outages: replay the DLQ once every request is final. */
  replay: boolean;
  shared?: { keys: number; requesters: number; shuffleSeconds: number };
  requests: number;
  seed: number;
  projects: number;
  timeoutMinutes: number;
  failProbability: number;
  lateFactors: number[];
  log: string;
}

/** The soak's options from the command line; undefined for --help (the usage is printed). */
export function parseOptions(argv: string[]): Options | undefined {
  const values = parseCommand(
    {
      requests: { type: 'string' },
      outage: { type: 'string' },
      'outage-start': { type: 'string', default: String(OUTAGE_START_MS / 1000) },
      'tail-seconds': { type: 'string', default: String(AFTER_LAST_OUTAGE_MS / 1000) },
      'keep-dlq': { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      projects: { type: 'string', default: '100' },
      'timeout-minutes': { type: 'string', default: '15' },
      'fail-probability': { type: 'string', default: '0' },
      'late-factors': { type: 'string', default: LATE_FACTORS.join(',') },
      log: { type: 'string' },
      shared: { type: 'boolean', default: false },
      keys: { type: 'string', default: '60' },
      requesters: { type: 'string', default: '3' },
      'shuffle-seconds': { type: 'string', default: '4' },
    },
    argv,
    USAGE,
  );
  if (!values) return undefined;
  const timeoutMinutes = Number(values['timeout-minutes']);
  if (!(timeoutMinutes > 0)) {
    throw new UsageError(
      `--timeout-minutes must be a number of minutes over 0 (given "${values['timeout-minutes']}")`,
    );
  }
  const outages = values.outage === undefined ? undefined : parseOutages(values.outage);
  if (outages && values.shared) {
    throw new UsageError('--outage and --shared do not go together: the shared soak has no outages');
  }
  const options: Options = {
    ...(outages && { outages }),
    outageStartMs: 1000 * (numberFlag('outage-start', values['outage-start'], 0, 86_400) ?? 0),
    tailMs: 1000 * (numberFlag('tail-seconds', values['tail-seconds'], 0, 86_400) ?? 0),
    replay: !values['keep-dlq'],
    requests: integerFlag('requests', values.requests, 1) ?? (outages ? 200 : 1000),
    seed: integerFlag('seed', values.seed, Number.NEGATIVE_INFINITY) ?? 0,
    projects: integerFlag('projects', values.projects, 1) ?? 0,
    timeoutMinutes,
    failProbability: numberFlag('fail-probability', values['fail-probability'], 0, 1) ?? 0,
    lateFactors: values['late-factors'].split(',').map((f) => {
      const n = Number(f);
      if (f.trim() === '' || !(n > 1)) {
        throw new UsageError(`--late-factors must be numbers over 1 (later than the timeout) (given "${f}")`);
      }
      return n;
    }),
    log: values.log ?? join(tmpdir(), `soak-${Date.now()}.log`),
    ...(values.shared && {
      shared: {
        keys: integerFlag('keys', values.keys, 1) ?? 0,
        requesters: integerFlag('requesters', values.requesters, 1) ?? 0,
        shuffleSeconds: integerFlag('shuffle-seconds', values['shuffle-seconds'], 0) ?? 0,
      },
    }),
  };
  if (options.requests > options.projects * KEYS_PER_PROJECT) {
    throw new UsageError(`--requests ${options.requests} needs more than ${options.projects} projects`);
  }
  return options;
}

/**
 * The fault rules, in the order the simulator tries them. A request missed by one rule's draw
 * falls to the next, so each rule's probability is its share over what the rules before it left.
 */
export function faultRules(lateFactors: number[]): FaultRule[] {
  const api: FaultRule['operations'] = [...API_OPERATIONS];
  const shares: Array<{ share: number; rule: Omit<FaultRule, 'probability'> }> = [
    { share: FAULTS.status500, rule: { fault: { kind: 'status', status: 500 }, operations: api } },
    { share: FAULTS.status503, rule: { fault: { kind: 'status', status: 503 }, operations: api } },
    {
      share: FAULTS.status429,
      rule: {
        fault: { kind: 'status', status: 429, errorCode: 'RATE_LIMITED', retryAfterSeconds: 1 },
        operations: api,
      },
    },
    // Create-only rules last: their draws are made for creates only, so the shares above hold for every operation.
    { share: FAULTS.lostResponse, rule: { fault: { kind: 'lostResponse' }, operations: ['create'] } },
    ...lateFactors.map((factor) => ({
      share: FAULTS.lateCreate / lateFactors.length,
      rule: {
        fault: { kind: 'lateCreate' as const, landAfterMs: Math.round(ATLAS_TIMEOUT_MS * factor) },
        operations: ['create' as const],
      },
    })),
  ];
  let left = 1;
  return shares.map(({ share, rule }) => {
    const probability = Math.min(1, share / left);
    left -= share;
    return { ...rule, probability };
  });
}

interface Planned {
  requestId: string;
  groupId: string;
  regionName: AtlasRegion;
  vpcRegionName?: AtlasRegion;
}

/** N create requests over P projects: distinct keys, a few asked again by another requestId; then the duplicate messages. */
function planRequests(options: Pick<Options, 'requests' | 'projects' | 'seed' | 'outages'>): {
  requests: Planned[];
  bodies: string[];
  duplicateMessages: number;
  invalid: number;
} {
  const random = seededRandom(options.seed);
  const project = (i: number) => `50a${i.toString(16).padStart(21, '0')}`;
  const keysIn = new Map<number, number>();
  const requests: Planned[] = [];
  for (let i = 0; i < options.requests; i++) {
    const requestId = `soak-${options.seed}-${i}`;
    const earlier = requests[Math.floor(random() * requests.length)];
    if (earlier && random() < REPEATED_KEY_SHARE) {
      requests.push({ ...earlier, requestId });
      continue;
    }
    // A random project with room for another key (parseOptions made sure there is one).
    let p = Math.floor(random() * options.projects);
    while ((keysIn.get(p) ?? 0) >= KEYS_PER_PROJECT) p = (p + 1) % options.projects;
    const k = keysIn.get(p) ?? 0;
    keysIn.set(p, k + 1);
    const { regionName, vpcRegionName } = keyAt(k);
    requests.push({ requestId, groupId: project(p), regionName, ...(vpcRegionName && { vpcRegionName }) });
  }
  const bodies = requests.map((r) => JSON.stringify({ cloudProvider: 'AWS', ...r }));
  // With outages, some requests the provisioner must reject (and announce the rejection).
  const invalid = options.outages ? Math.max(1, Math.round(options.requests * INVALID_SHARE)) : 0;
  for (let i = 0; i < invalid; i++) {
    bodies.push(
      JSON.stringify({
        requestId: `soak-${options.seed}-invalid-${i}`,
        cloudProvider: 'AWS',
        groupId: project(i % options.projects),
      }),
    );
  }
  let duplicateMessages = 0;
  for (const b of [...bodies]) {
    if (random() < DUPLICATE_MESSAGE_SHARE) {
      bodies.push(b);
      duplicateMessages += 1;
    }
  }
  // Shuffled, so the copies and the repeated keys arrive at any time.
  for (let i = bodies.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [bodies[i], bodies[j]] = [bodies[j] as string, bodies[i] as string];
  }
  return { requests, bodies, duplicateMessages, invalid };
}

/** Resolves true when every request has a final place, false at the deadline; follows the tracker's changes. */
function allFinal(tracker: RequestTracker, deadline: number, progress: () => void): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (settled: boolean) => {
      unsubscribe();
      clearTimeout(timer);
      clearInterval(ticker);
      resolve(settled);
    };
    const unsubscribe = tracker.subscribe(() => {
      if (tracker.unfinished().length === 0) finish(true);
    });
    const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
    const ticker = setInterval(progress, 15_000);
    if (tracker.unfinished().length === 0) finish(true);
  });
}

/** The simulator's endpoints that no ledger item names. */
function unknownEndpoints(ledger: Awaited<ReturnType<typeof ledgerItems>>, sim: AtlasSimulator) {
  const known = new Set(ledger.flatMap((item) => (item.endpointId ? [item.endpointId] : [])));
  return sim.endpoints().filter((e) => !known.has(e.id));
}

/** Waits (bounded) until no simulator endpoint is on its way somewhere: INITIATING or DELETING. */
async function quiet(sim: AtlasSimulator, deadline: number): Promise<void> {
  const busy = () => sim.endpoints().some((e) => e.status === 'INITIATING' || e.status === 'DELETING');
  while (busy() && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 250));
}

const pad = (label: string, value: string | number) => `  ${label.padEnd(50)} ${value}`;

async function soak(options: Options, say: (text?: string) => void): Promise<number> {
  const startedAt = Date.now();
  const deadline = startedAt + options.timeoutMinutes * 60_000;
  const { requests, bodies, duplicateMessages, invalid } = planRequests(options);
  const keys = new Set(
    requests.map((r) => `${r.groupId}#${r.regionName}#${r.vpcRegionName ?? r.regionName}`),
  );

  say(
    `Soak: ${options.requests} requests (${keys.size} keys) over ${options.projects} projects, seed ${options.seed}`,
  );
  say('Starting ElasticMQ, moto and the Atlas simulator …');
  const flow: LocalFlow = await startLocalFlow({
    settings: SETTINGS,
    checkPeriodMs: CHECK_PERIOD_MS,
    outages: options.outages !== undefined,
    simulator: {
      seed: options.seed,
      activationDelayMs: ACTIVATION_DELAY_MS,
      deletionDelayMs: DELETION_DELAY_MS,
      failProbability: options.failProbability,
    },
  });
  try {
    const sim = flow.simulator;
    if (!sim) throw new Error('the flow started without the simulator');
    for (const url of [sim.url, flow.servers.sqs.endpoint, flow.servers.aws.endpoint]) {
      if (!/^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/.test(url))
        throw new Error(`not loopback: ${url}`);
    }
    for (const rule of faultRules(options.lateFactors)) sim.injectFault(rule);
    say(
      `  settings: Atlas timeout ${flow.settings.atlasTimeoutMs} ms, ${flow.settings.maxAttempts} attempts, ` +
        `backoff ${flow.settings.backoffBaseSeconds}-${flow.settings.backoffCapSeconds} s, batch ${flow.settings.batchSize}, ` +
        `concurrency ${flow.settings.maxConcurrency}, checker every ${CHECK_PERIOD_MS} ms`,
    );
    say(
      `  faults: 5xx ${(FAULTS.status500 + FAULTS.status503) * 100}%, 429 ${FAULTS.status429 * 100}% of API calls; ` +
        `lostResponse ${FAULTS.lostResponse * 100}%, lateCreate ${FAULTS.lateCreate * 100}% ` +
        `(${options.lateFactors.map((f) => f * ATLAS_TIMEOUT_MS).join('/')} ms) of creates; ` +
        `${duplicateMessages} duplicate messages; fail probability ${options.failProbability}`,
    );
    say(`  function logs: ${options.log}`);

    const publishedAt = Date.now();
    const sentAt = new Map<TrackedRequest, number>();
    const outages = options.outages
      ? await publishThroughOutages(flow, bodies, { ...options, outages: options.outages }, sentAt, say)
      : [];
    if (!options.outages) await flow.send(bodies);
    say(
      `Published ${bodies.length} messages in ${((Date.now() - publishedAt) / 1000).toFixed(1)} s; waiting …`,
    );
    const tracker = flow.tracker;
    /** Until every request is final, then the late landings and a few checker periods. */
    const settle = async (): Promise<boolean> => {
      const settled = await allFinal(tracker, deadline, () => {
        const open = tracker.unfinished();
        const done = tracker.requests.length - open.length;
        // The last few by name: a request that never ends is found in the function logs by it.
        const named =
          open.length <= 3
            ? `: waiting for ${open.map((r) => `${r.label} (${r.place}, messages ${[...r.messageIds].join(' ')})`).join(', ')}`
            : '';
        say(
          `  [${Math.round((Date.now() - publishedAt) / 1000)} s] ${done}/${tracker.requests.length} final${named}`,
        );
      });
      // Creates still in flight are held by their late landings: no new ones, then wait out the
      // latest landing a create sent before now can have.
      sim.clearFaults();
      const lastLanding = Date.now() + Math.max(...options.lateFactors) * ATLAS_TIMEOUT_MS;
      await new Promise((ok) => setTimeout(ok, Math.max(0, Math.min(deadline, lastLanding) - Date.now())));
      // A few more checker periods: the checker sees the last changes and the last extra endpoints.
      for (let i = 0; i < EXTRA_CHECK_PERIODS && Date.now() < deadline; i++) {
        await new Promise((ok) => setTimeout(ok, CHECK_PERIOD_MS));
        await flow.statusChecker.runNow();
      }
      await quiet(sim, Math.min(deadline, Date.now() + ACTIVATION_DELAY_MS + DELETION_DELAY_MS + 5_000));
      sim.clearFaults();
      return settled;
    };
    const settled = await settle();
    const settledMs = Date.now() - publishedAt;
    say(settled ? `Every request is final after ${(settledMs / 1000).toFixed(1)} s` : 'Timed out waiting');

    // After the outages, what the README tells an operator: replay the DLQ once. Before it, the
    // places the outages left and the endpoints waiting for their parked request to be replayed.
    let beforeReplay: ReadonlyMap<TrackedRequest, string | undefined> | undefined;
    let awaitingReplay = 0;
    let replayed = 0;
    if (options.outages && options.replay) {
      beforeReplay = new Map(tracker.requests.map((r) => [r, r.final]));
      awaitingReplay = unknownEndpoints(await ledgerItems(flow.environment), sim).length;
      replayed = await replayDlq(flow);
      say(`Replayed the DLQ: ${replayed} messages moved back; waiting …`);
      if (replayed > 0) say((await settle()) ? 'Every replayed request is final' : 'Timed out waiting');
    }

    // The figures.
    const ledger = await ledgerItems(flow.environment);
    const endpoints = sim.endpoints();
    const unknown = unknownEndpoints(ledger, sim);
    const duplicates = sim.duplicates();
    const extra = duplicates.reduce((n, d) => n + d.ids.length - 1, 0);
    const tracked = tracker.requests;
    const lost = tracker.unfinished();
    const outcomes = (r: (typeof tracked)[number]) => new Set(r.events.map((e) => e.outcome));
    const provisioned = tracked.filter((r) => r.final === 'provisioned');
    const adopted = provisioned.filter((r) => outcomes(r).has('ADOPTED') && !outcomes(r).has('PROVISIONED'));
    const count = (final: string) => tracked.filter((r) => r.final === final).length;
    const other = tracked.filter((r) => r.final && !['provisioned', 'dlq', 'rejected'].includes(r.final));
    const api = sim.requests.filter((r) => ['list', 'create', 'get', 'delete'].includes(r.operation));
    const byOp = (op: string) => api.filter((r) => r.operation === op).length;
    const byStatus = (test: (status: number) => boolean) => api.filter((r) => test(r.status)).length;
    const creates201 = api.filter((r) => r.operation === 'create' && r.status === 201).length;
    const perEndpoint = endpoints.length > 0 ? (api.length / endpoints.length).toFixed(2) : 'n/a';

    say();
    say('Soak results');
    say(
      pad(
        'requests published',
        `${options.requests} (${keys.size} keys; +${duplicateMessages} duplicate messages)`,
      ),
    );
    say(
      pad(
        'final: provisioned (created / adopted)',
        `${provisioned.length} (${provisioned.length - adopted.length} / ${adopted.length})`,
      ),
    );
    say(pad('final: DLQ', count('dlq')));
    say(pad('final: rejected', count('rejected')));
    say(
      pad(
        'final: other',
        `${other.length}${other.length ? ` (${[...new Set(other.map((r) => r.final))].join(', ')})` : ''}`,
      ),
    );
    say(pad('LOST (no final place)', lost.length));
    let outagesOk = true;
    let table = '';
    if (options.outages) {
      const invalidRequests = tracked.filter((r) => r.requestId?.includes('-invalid-'));
      const misplaced = tracked.filter(
        (r) => r.final !== undefined && r.requestId?.includes('-invalid-') !== (r.final === 'rejected'),
      );
      const outboxes = ledger.filter((item) => Object.keys(item.outbox ?? {}).length > 0);
      say(
        pad(
          'invalid requests (must end rejected)',
          `${invalid} (rejected: ${invalidRequests.filter((r) => r.final === 'rejected').length})`,
        ),
      );
      say(pad('in another place than their kind says', misplaced.length));
      // A message sent twice is tracked twice; its requester hears of the requestId.
      const answered = new Set(tracked.filter((r) => r.final !== undefined).map((r) => r.requestId));
      const unanswered = new Set(lost.map((r) => r.requestId).filter((id) => !answered.has(id)));
      say(pad('requestIds with no final answer on any copy', unanswered.size));
      say(pad('events heard again (same eventId, counted once)', tracker.heardAgain));
      say(pad('EVENTIDS reused for another fact', tracker.reusedEventIds.length));
      say(pad('OUTBOXES left non-empty', outboxes.length));
      if (beforeReplay) {
        const dlqBefore = [...beforeReplay.values()].filter((f) => f === 'dlq').length;
        say(pad('in the DLQ after the outages / replayed', `${dlqBefore} / ${replayed}`));
        say(pad('endpoints waiting for their request replayed', awaitingReplay));
      }
      table = outageTable(outages, tracked, sentAt, tracker, beforeReplay);
      for (const r of misplaced.slice(0, 10))
        say(`  misplaced: ${r.label}: ${r.final} ${r.error?.code ?? ''}`);
      for (const item of outboxes.slice(0, 10))
        say(`  outbox left: ${item.key}: ${Object.keys(item.outbox ?? {}).length} events`);
      outagesOk = outboxes.length === 0 && tracker.reusedEventIds.length === 0;
    }
    say(pad('DUPLICATE endpoints left (keys / extra endpoints)', `${duplicates.length} / ${extra}`));
    say(pad('UNKNOWN endpoints (in no ledger item)', unknown.length));
    say(
      pad(
        'endpoints in the simulator',
        `${endpoints.length} (${[...new Set(endpoints.map((e) => e.status))].map((s) => `${s} ${endpoints.filter((e) => e.status === s).length}`).join(', ')})`,
      ),
    );
    say(
      pad(
        'ledger items',
        `${ledger.length} (${[...new Set(ledger.map((i) => i.status))].map((s) => `${s} ${ledger.filter((i) => i.status === s).length}`).join(', ')})`,
      ),
    );
    say(
      pad(
        'Atlas API calls',
        `${api.length}: list ${byOp('list')}, create ${byOp('create')} (201: ${creates201}), get ${byOp('get')}, delete ${byOp('delete')}`,
      ),
    );
    say(
      pad(
        '  answered 5xx / 429 / no answer',
        `${byStatus((s) => s >= 500)} / ${byStatus((s) => s === 429)} / ${byStatus((s) => s === 0)}`,
      ),
    );
    say(pad('Atlas API calls per endpoint (checker included)', perEndpoint));
    say(
      pad(
        'create calls per endpoint',
        endpoints.length > 0 ? (byOp('create') / endpoints.length).toFixed(2) : 'n/a',
      ),
    );
    say(pad('token requests', sim.requests.filter((r) => r.operation === 'token').length));
    say(
      pad(
        'wall time: publish to all final / in all',
        `${(settledMs / 1000).toFixed(1)} s / ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
      ),
    );
    if (table) {
      say();
      say('Outages (requests published during each; answers late: events first heard after it ended)');
      say(table);
      say();
    }
    for (const problem of tracker.problems.slice(0, 5)) say(`  tracker problem: ${problem}`);
    for (const r of lost.slice(0, 10)) say(`  lost: ${r.label}: ${r.place}`);
    for (const d of duplicates.slice(0, 10)) {
      say(`  duplicate: ${d.groupId} ${d.regionName}/${d.vpcRegionName}: ${d.ids.join(', ')}`);
    }
    for (const e of unknown.slice(0, 10))
      say(`  unknown: ${e.groupId} ${e.regionName}/${e.vpcRegionName} ${e.id} ${e.status}`);
    const ok = lost.length === 0 && duplicates.length === 0 && unknown.length === 0 && outagesOk;
    say(
      ok
        ? 'PASS: nothing lost, no duplicates, no unknown endpoints'
        : 'FAIL: see LOST, DUPLICATE, UNKNOWN, OUTBOXES and EVENTIDS above',
    );
    return ok ? 0 : 1;
  } finally {
    say('Stopping …');
    await flow.stop();
  }
}

interface RanOutage extends PlannedOutage {
  from: number;
  until: number;
}

/**
 * Sends the bodies in waves WAVE_MS apart while the outages run one after another (the first
 * --outage-start after the first wave, each next OUTAGE_GAP_MS after the last ended), until
 * --tail-seconds after the last: some requests are published during each outage.
 */
async function publishThroughOutages(
  flow: LocalFlow,
  bodies: readonly string[],
  options: Pick<Options, 'outageStartMs' | 'tailMs'> & { outages: readonly PlannedOutage[] },
  sentAt: Map<TrackedRequest, number>,
  say: (text?: string) => void,
): Promise<RanOutage[]> {
  const planned = options.outages;
  const start = Date.now();
  const ran: RanOutage[] = [];
  let at = start + options.outageStartMs;
  const schedule = planned.map((o) => {
    const from = at;
    at = from + o.seconds * 1000 + OUTAGE_GAP_MS;
    return { ...o, from };
  });
  const span = at - OUTAGE_GAP_MS + options.tailMs - start;
  const waves = Math.max(1, Math.ceil(span / WAVE_MS));
  // Wave w sends bodies [w·n/waves, (w+1)·n/waves): spread evenly over every wave.
  const cut = (w: number) => Math.floor((w * bodies.length) / waves);
  say(
    `  outages: ${planned.map((o) => `${o.service} ${o.kind} ${o.seconds} s`).join(', ')}; ${waves} waves of about ${(bodies.length / waves).toFixed(1)} messages`,
  );
  const timers = schedule.map((o) =>
    setTimeout(() => {
      const started = flow.outage(o.service, o.kind, o.seconds * 1000);
      ran.push({ ...o, from: started.from, until: started.until });
      say(
        `  [${Math.round((started.from - start) / 1000)} s] ${o.service} down (${o.kind}) for ${o.seconds} s`,
      );
    }, o.from - start),
  );
  try {
    for (let w = 0; w < waves; w++) {
      const wait = start + w * WAVE_MS - Date.now();
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
      const chunk = bodies.slice(cut(w), cut(w + 1));
      if (chunk.length === 0) continue;
      const now = Date.now();
      for (const r of await flow.send(chunk)) sentAt.set(r, now);
    }
    // The last outage ends before the waiting starts.
    const lastEnd = Math.max(...schedule.map((o) => o.from + o.seconds * 1000));
    if (lastEnd > Date.now()) await new Promise((ok) => setTimeout(ok, lastEnd - Date.now() + 100));
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  return ran;
}

/** Per outage: its length, the requests published during it, where they ended, answers late and lost. */
function outageTable(
  outages: readonly RanOutage[],
  tracked: readonly TrackedRequest[],
  sentAt: ReadonlyMap<TrackedRequest, number>,
  tracker: RequestTracker,
  beforeReplay?: ReadonlyMap<TrackedRequest, string | undefined>,
): string {
  const rows = [
    [
      'outage',
      'length',
      'published during',
      'where they ended',
      ...(beforeReplay ? ['after the replay'] : []),
      'answers late',
      'answers lost',
    ],
  ];
  const places = (during: readonly TrackedRequest[], final: (r: TrackedRequest) => string | undefined) => {
    const counts = new Map<string, number>();
    for (const r of during) counts.set(final(r) ?? 'none', (counts.get(final(r) ?? 'none') ?? 0) + 1);
    return [...counts].map(([place, n]) => `${place} ${n}`).join(', ') || '-';
  };
  for (const o of outages) {
    const during = tracked.filter((r) => {
      const t = sentAt.get(r);
      return t !== undefined && t >= o.from && t < o.until;
    });
    const late = during.reduce(
      (n, r) => n + r.events.filter((e) => (tracker.heardAt.get(e.eventId) ?? 0) >= o.until).length,
      0,
    );
    rows.push([
      `${o.service} (${o.service === 'atlas' ? '503' : o.kind})`,
      `${((o.until - o.from) / 1000).toFixed(0)} s`,
      String(during.length),
      places(during, (r) => (beforeReplay ? beforeReplay.get(r) : r.final)),
      ...(beforeReplay ? [places(during, (r) => r.final)] : []),
      String(late),
      String(during.filter((r) => r.final === undefined).length),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`).join('\n');
}

/** Runs the soak; resolves with 0 only when nothing is lost, duplicated or unknown. */
export async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (!options) return 0;
  const missing = await missingPrerequisites();
  if (missing.length > 0) {
    console.error(`npm run soak needs, on this machine:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    return 1;
  }
  const log = createWriteStream(options.log);
  const output = captureProcessOutput((text) => log.write(text));
  const say = (text = '') => output.write(`${text}\n`);
  // The run stops by itself: past the timeout (plus a minute to stop the servers) it is ended.
  const watchdog = setTimeout(
    () => {
      say(`The soak overran --timeout-minutes ${options.timeoutMinutes} by a minute: exiting`);
      process.exit(1);
    },
    options.timeoutMinutes * 60_000 + 60_000,
  ).unref();
  try {
    if (options.shared) {
      return await sharedSoak(
        { ...options.shared, seed: options.seed, timeoutMinutes: options.timeoutMinutes },
        faultRules(options.lateFactors),
        say,
      );
    }
    return await soak(options, say);
  } finally {
    clearTimeout(watchdog);
    output.restore();
    await new Promise((ok) => log.end(ok));
  }
}

if (isMain(import.meta)) {
  await runMain(() => main(process.argv.slice(2)), { usage: USAGE });
  // Whatever a stopped server left behind must not keep the process alive.
  process.exit();
}
