/**
 * The sweep keeps the one outbox bound (MAX_OUTBOX) while EventBridge refuses its events: a newer
 * status of an endpoint takes the place of its older pending one, and a change that would pass
 * the bound waits for EventBridge, unrecorded, for a later run.
 */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { beforeEach, describe, expect, it } from 'vitest';
import { statusChange } from '#events/status-change.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import { type LedgerItem, MAX_OUTBOX } from '#ledger/item.ts';
import {
  buildChecker,
  eventBridge,
  FakeAtlas,
  type FakeTable,
  NOW,
  plentyOfTime,
  resetAws,
} from './fixtures.ts';

describe('StatusChecker, the outbox bound while EventBridge refuses', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
  });

  /** An answer to another message of the key: a fact of its own, never replaced. */
  const answerOf = (item: LedgerItem, n: number): StatusChangedDetail => ({
    version: '1',
    eventId: n.toString(16).padStart(32, '0'),
    requester: 'default',
    outcome: 'ADOPTED',
    requestIds: [`req-${n}`],
    messageId: `m-${n}`,
    naturalKey: item.key,
    endpointId: item.endpointId,
    status: item.status,
    occurredAt: NOW.toISOString(),
  });
  const store = (item: LedgerItem, events: StatusChangedDetail[]) => {
    const stored = table.get(item.key);
    if (stored) stored.outbox = Object.fromEntries(events.map((e) => [e.eventId, e]));
  };
  const pendingOf = (key: string) => Object.values(table.get(key)?.outbox ?? {});
  const runAt = (ms: number) => buildChecker(atlas, { now: () => new Date(ms) }).checker.run(plentyOfTime);

  it("records a status change at the bound in place of the endpoint's pending status", async () => {
    const item = table.put({ status: 'AVAILABLE' });
    const older = statusChange(
      { ...item, status: 'INITIATING' },
      { status: 'AVAILABLE' },
      new Date(NOW.getTime() - 600_000),
    ).events[0];
    if (!older) throw new Error('no status event');
    store(item, [older, ...Array.from({ length: MAX_OUTBOX - 1 }, (_, i) => answerOf(item, i + 1))]);
    atlas.seedFor(item, 'ACTIVE');

    await expect(runAt(NOW.getTime())).resolves.toMatchObject({ checked: 1, changed: 1 });

    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE' });
    const pending = pendingOf(item.key);
    expect(pending).toHaveLength(MAX_OUTBOX);
    expect(pending.map((e) => e.eventId)).not.toContain(older.eventId);
    expect(pending).toContainEqual(expect.objectContaining({ outcome: 'STATUS_CHANGED', status: 'ACTIVE' }));
  });

  it('leaves a change unrecorded while the outbox is full of answers, and records it once EventBridge took them', async () => {
    const item = table.put({ status: 'INITIATING' });
    store(
      item,
      Array.from({ length: MAX_OUTBOX }, (_, i) => answerOf(item, i)),
    );
    atlas.seedFor(item, 'ACTIVE');

    await expect(runAt(NOW.getTime())).resolves.toMatchObject({ checked: 0, changed: 0, skipped: 1 });
    expect(table.get(item.key)).toMatchObject({ status: 'INITIATING' });
    expect(pendingOf(item.key)).toHaveLength(MAX_OUTBOX);

    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    // This run sends the backlog; the next one records the change.
    await runAt(NOW.getTime() + 300_000);
    await expect(runAt(NOW.getTime() + 600_000)).resolves.toMatchObject({ changed: 1 });
    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE' });
    expect(table.get(item.key)).not.toHaveProperty('outbox');
  });

  it('keeps one pending status per endpoint of endpoints flapping through a long outage, and the item no larger', async () => {
    const flapping = [table.put({ status: 'INITIATING' }), table.put({ status: 'INITIATING' })];
    const endpoints = flapping.map((item) => atlas.seedFor(item, 'INITIATING'));
    const sizes: number[] = [];
    const FLAPS = 200;
    const cycle = ['AVAILABLE', 'INITIATING', 'PENDING_RECREATION', 'INITIATING'] as const;
    for (let run = 1; run <= FLAPS; run++) {
      for (const endpoint of endpoints) endpoint.status = cycle[(run - 1) % cycle.length] ?? 'INITIATING';
      await expect(runAt(NOW.getTime() + run * 300_000)).resolves.toMatchObject({ changed: 2 });
      sizes.push(Buffer.byteLength(JSON.stringify(table.get(flapping[0]?.key ?? ''))));
    }

    for (const item of flapping) {
      const pending = pendingOf(item.key);
      expect(pending).toHaveLength(1);
      expect(pending[0]).toMatchObject({ outcome: 'STATUS_CHANGED', status: table.get(item.key)?.status });
    }
    // The item after 200 flaps is the size it was after one (within a few bytes of timestamps).
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(64);
    expect(Math.max(...sizes)).toBeLessThan(2_000);
  });
});
