/**
 * `npm run soak -- --shared`: several requesters send create and delete sequences for keys they
 * share, each message delayed at random so they are delivered in another order than they were
 * sent, with the same Atlas faults as the plain soak. What must hold for each key when every
 * request has its final place:
 *
 * - the key's last request sent was a create: its endpoint stands (nothing sent earlier can undo
 *   it: an older request of its own requester is SUPERSEDED, an older delete of another requester
 *   releases only that requester's hold);
 * - every requester's last request for the key was a delete: it has no endpoint (an older create
 *   delivered late is SUPERSEDED by the delete that took effect);
 * - otherwise (the last request a delete, another requester's last a create) either is right:
 *   whether the create's hold was taken before the delete arrived decides, and both are reported.
 *
 * And, as in the plain soak: no request without a final place, no duplicate endpoint, no
 * endpoint unknown to the ledger.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AtlasRegion } from '#atlas/types.ts';
import type { RequesterInput } from '#infra/settings.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import type { LocalEnvironment } from '#test/local/environment.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { seededRandom } from '#test/simulator/random.ts';
import type { FaultRule } from '#test/simulator/types.ts';

export interface SharedOptions {
  /** Keys the requesters share. */
  keys: number;
  /** Requesters sending for them. */
  requesters: number;
  seed: number;
  timeoutMinutes: number;
  /** Longest random delay of a message, s: how far delivery order drifts from send order. */
  shuffleSeconds: number;
}

interface PlannedRequest {
  requester: string;
  key: number;
  action: 'create' | 'delete';
  body: string;
  delaySeconds: number;
}

const REGIONS: AtlasRegion[] = ['US_EAST_1', 'US_WEST_2', 'EU_WEST_1', 'AP_SOUTHEAST_2'];
const keyFields = (k: number) => ({
  groupId: `5ad${Math.floor(k / REGIONS.length)
    .toString(16)
    .padStart(21, '0')}`,
  cloudProvider: 'AWS' as const,
  regionName: REGIONS[k % REGIONS.length] as AtlasRegion,
});
const keyName = (k: number) => {
  const f = keyFields(k);
  return `${f.groupId}#${f.regionName}`;
};

/** Every ledger item, by Scan (the soak's table is small). */
export async function ledgerItems(environment: LocalEnvironment): Promise<LedgerItem[]> {
  const items: LedgerItem[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const out = await environment.clients.dynamo.send(
      new ScanCommand({ TableName: environment.tableName, ConsistentRead: true, ExclusiveStartKey }),
    );
    items.push(...((out.Items ?? []) as LedgerItem[]));
    ExclusiveStartKey = out.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** Per key, 2-6 requests by random requesters, mostly creates first; all interleaved in one send order. */
export function planShared(options: SharedOptions): PlannedRequest[] {
  const random = seededRandom(options.seed);
  const names = Array.from({ length: options.requesters }, (_, i) => `team-${i}`);
  const perKey = Array.from({ length: options.keys }, (_, key) => {
    const count = 2 + Math.floor(random() * 5);
    return Array.from({ length: count }, (_, i) => ({
      requester: names[Math.floor(random() * names.length)] as string,
      key,
      action: (i === 0 || random() < 0.55 ? 'create' : 'delete') as 'create' | 'delete',
    }));
  });
  // Interleave the keys' sequences at random, each key's own order kept.
  const planned: PlannedRequest[] = [];
  const cursors = perKey.map(() => 0);
  let left = perKey.reduce((n, s) => n + s.length, 0);
  while (left > 0) {
    const key = Math.floor(random() * perKey.length);
    const sequence = perKey[key] as (typeof perKey)[number];
    const at = cursors[key] as number;
    if (at >= sequence.length) continue;
    cursors[key] = at + 1;
    left -= 1;
    const r = sequence[at] as (typeof sequence)[number];
    const requestId = `shared-${options.seed}-${planned.length}`;
    planned.push({
      ...r,
      body: JSON.stringify({ requestId, action: r.action, ...keyFields(r.key) }),
      delaySeconds: Math.floor(random() * (options.shuffleSeconds + 1)),
    });
  }
  return planned;
}

/** What each key must end as, from the requests in the order they were sent. */
export function expectedEnds(
  planned: readonly PlannedRequest[],
): Map<number, 'endpoint' | 'none' | 'either'> {
  const byKey = new Map<number, PlannedRequest[]>();
  for (const p of planned) byKey.set(p.key, [...(byKey.get(p.key) ?? []), p]);
  return new Map(
    [...byKey].map(([key, requests]) => {
      const last = requests.at(-1);
      const lastOf = new Map(requests.map((r) => [r.requester, r.action]));
      if (last?.action === 'create') return [key, 'endpoint'];
      if ([...lastOf.values()].every((a) => a === 'delete')) return [key, 'none'];
      return [key, 'either'];
    }),
  );
}

export async function sharedSoak(
  options: SharedOptions,
  faults: FaultRule[],
  say: (text?: string) => void,
): Promise<number> {
  const startedAt = Date.now();
  const deadline = startedAt + options.timeoutMinutes * 60_000;
  const planned = planShared(options);
  const names = [...new Set(planned.map((p) => p.requester))].sort();
  const requesters: RequesterInput[] = names.map((name) => ({
    name,
    senders: ['000000000000'],
    projects: 'ALL',
    profiles: ['default'],
    actions: ['create', 'delete'],
  }));
  say(
    `Shared soak: ${planned.length} requests from ${names.length} requesters over ${options.keys} keys, ` +
      `each delayed 0-${options.shuffleSeconds} s, seed ${options.seed}`,
  );
  const flow: LocalFlow = await startLocalFlow({
    settings: {
      atlasTimeoutMs: 1000,
      backoffBaseSeconds: 1,
      backoffCapSeconds: 5,
      maxAttempts: 8,
      requesters,
    },
    checkPeriodMs: 1000,
    simulator: { seed: options.seed, activationDelayMs: 1500, deletionDelayMs: 1500 },
  });
  try {
    const sim = flow.simulator;
    if (!sim) throw new Error('the flow started without the simulator');
    for (const rule of faults) sim.injectFault(rule);
    // One message at a time, 2 ms apart: each has its own SentTimestamp, in plan order.
    for (const p of planned) {
      await flow.send([p.body], { requester: p.requester, delaySeconds: p.delaySeconds });
      await new Promise((ok) => setTimeout(ok, 2));
    }
    const tracker = flow.tracker;
    await tracker.settled(Math.max(1, deadline - Date.now())).catch(() => undefined);
    sim.clearFaults();
    // The creates that land late have landed; the checker sees the last changes.
    await new Promise((ok) => setTimeout(ok, 3_000));
    for (let i = 0; i < 3; i++) {
      await flow.statusChecker.runNow();
      await new Promise((ok) => setTimeout(ok, 1_000));
    }
    const standing = (k: number) => {
      const f = keyFields(k);
      return sim
        .endpoints()
        .filter((e) => e.groupId === f.groupId && e.regionName === f.regionName && e.status !== 'DELETING');
    };
    const expected = expectedEnds(planned);
    const wrong: string[] = [];
    let either = 0;
    for (const [key, end] of expected) {
      const has = standing(key).length > 0;
      if (end === 'either') either += 1;
      else if ((end === 'endpoint') !== has)
        wrong.push(`${keyName(key)}: expected ${end}, found ${has ? 'an endpoint' : 'none'}`);
    }
    const lost = tracker.unfinished();
    const duplicates = sim.duplicates();
    const known = new Set(
      (await ledgerItems(flow.environment)).flatMap((i) => (i.endpointId ? [i.endpointId] : [])),
    );
    const unknown = sim.endpoints().filter((e) => !known.has(e.id));
    const finals = new Map<string, number>();
    for (const r of tracker.requests) finals.set(r.final ?? 'none', (finals.get(r.final ?? 'none') ?? 0) + 1);
    say();
    say('Shared soak results');
    say(
      `  requests: ${planned.length}; final places: ${[...finals].map(([f, n]) => `${f} ${n}`).join(', ')}`,
    );
    say(
      `  keys: ${expected.size} (${expected.size - either} with one right end, ${either} where either end is right)`,
    );
    say(`  keys in the wrong state: ${wrong.length}`);
    say(`  LOST (no final place): ${lost.length}`);
    say(`  DUPLICATE endpoints: ${duplicates.length}`);
    say(`  UNKNOWN endpoints (in no ledger item): ${unknown.length}`);
    say(`  wall time: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    for (const w of wrong.slice(0, 10)) say(`  wrong: ${w}`);
    for (const r of lost.slice(0, 10)) say(`  lost: ${r.label}: ${r.place}`);
    const ok = wrong.length === 0 && lost.length === 0 && duplicates.length === 0 && unknown.length === 0;
    say(ok ? 'PASS: every key as its requests say, nothing lost, no duplicates' : 'FAIL: see above');
    return ok ? 0 : 1;
  } finally {
    await flow.stop();
  }
}
