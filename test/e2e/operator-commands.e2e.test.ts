/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), as an operator meets a
 * `npm start -- --keep` run: the variables it prints exported, then `npm run send`, `status` and
 * `replay` as the README writes them, with no resource flags; the live view's tracker follows
 * a replayed request back to the DLQ.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main as replay } from '#infra/ops/replay.ts';
import { main as send } from '#infra/ops/send.ts';
import { main as status } from '#infra/ops/status.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { opsInstructions } from '#test/local/start.ts';
import { keepFunctionLogs, simulatorOf } from './support.ts';

keepFunctionLogs();

const GROUP = '6660000000000000000000c1';

describe('the operator commands against `npm start -- --keep`', () => {
  let flow: LocalFlow;
  let out: string[];

  beforeAll(async () => {
    flow = await startLocalFlow({ settings: {}, simulator: { activationDelayMs: 300 }, checkPeriodMs: 500 });
    // The project's credentials lack a permission: its requests go to the DLQ at once.
    simulatorOf(flow).injectFault({ groupId: GROUP, fault: { kind: 'status', status: 403 } });
    flow.tracker.followUnknown();
  });
  afterAll(() => flow?.stop());

  beforeEach(() => {
    // GIVEN the shell of an operator who exported what --keep printed
    for (const line of opsInstructions(flow.environment).filter((l) => l.startsWith('export '))) {
      for (const pair of line.slice('export '.length).split(' ')) {
        const [name = '', ...value] = pair.split('=');
        vi.stubEnv(name, value.join('='));
      }
    }
    out = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => out.push(text));
    vi.spyOn(console, 'error').mockImplementation((text: string) => out.push(text));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });

  it('sends, shows the ledger, dry-runs and replays, and the view follows the replayed request back to the DLQ', {
    timeout: 90_000,
  }, async () => {
    // WHEN a request is sent; THEN it is parked
    await expect(send(['--group', GROUP, '--region', 'US_EAST_1', '--request-id', 'ops-1'])).resolves.toBe(0);
    await flow.tracker.waitFor(
      () => flow.tracker.requests.some((r) => r.label === 'ops-1' && r.final === 'dlq'),
      {
        timeoutMs: 30_000,
        what: 'ops-1 to reach the DLQ',
      },
    );
    const request = flow.tracker.requests.find((r) => r.label === 'ops-1');

    await expect(status([])).resolves.toBe(0);
    expect(out.join('\n')).toContain(`${GROUP}#AWS#US_EAST_1#US_EAST_1`);

    await expect(replay(['--dry-run'])).resolves.toBe(0);
    expect(out.join('\n')).toMatch(/would move ~1 message\(s\)/);

    // WHEN it is replayed with the cause still there; THEN the view sees it received, then parked again
    await expect(replay([])).resolves.toBe(0);
    await flow.tracker.waitFor(() => request?.parked.length === 2 && request.final === 'dlq', {
      timeoutMs: 30_000,
      what: 'the replayed ops-1 to return to the DLQ',
    });
    expect(request?.deliveries).toHaveLength(2);
    expect(request?.place).toBe('DLQ');
  });
});
