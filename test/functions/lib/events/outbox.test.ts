import type { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it, vi } from 'vitest';
import { announceRecorded, type OutboxDeps } from '#events/outbox.ts';
import { EventPublishError } from '#events/publisher.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';

const event = (id: string): StatusChangedDetail => ({
  version: '1',
  eventId: id.padStart(32, '0'),
  outcome: 'STATUS_CHANGED',
  requester: 'default',
  requestIds: ['req-1'],
  occurredAt: '2026-11-29T10:00:00.000Z',
});

/** Two events of key a, one of key b. */
const RECORDED = [
  { key: 'a', event: event('1') },
  { key: 'b', event: event('2') },
  { key: 'a', event: event('3') },
];

const deps = (publish: OutboxDeps['events']['publish'], clearOutbox: OutboxDeps['ledger']['clearOutbox']) => {
  const logger = { error: vi.fn(), warn: vi.fn() };
  return {
    events: { publish: vi.fn(publish) },
    ledger: { clearOutbox: vi.fn(clearOutbox) },
    metrics: { addMetric: vi.fn() },
    logger: logger as unknown as Logger & typeof logger,
  };
};
const accepting = () =>
  deps(
    async () => {},
    async () => {},
  );

describe('announceRecorded', () => {
  it('publishes nothing and clears nothing when nothing was recorded', async () => {
    const d = accepting();

    await expect(announceRecorded(d, [])).resolves.toBe(true);

    expect(d.events.publish).not.toHaveBeenCalled();
    expect(d.ledger.clearOutbox).not.toHaveBeenCalled();
  });

  it('publishes all the events in one go, then clears each key’s accepted events in one write', async () => {
    const d = accepting();

    await expect(announceRecorded(d, RECORDED)).resolves.toBe(true);

    expect(d.events.publish).toHaveBeenCalledExactlyOnceWith(event('1'), event('2'), event('3'));
    expect(d.ledger.clearOutbox.mock.calls).toEqual([
      ['a', [event('1').eventId, event('3').eventId]],
      ['b', [event('2').eventId]],
    ]);
    expect(d.metrics.addMetric).not.toHaveBeenCalled();
    expect(d.logger.error).not.toHaveBeenCalled();
  });

  it('clears only what EventBridge accepted, counts the rest, and says some stay in an outbox', async () => {
    const d = deps(
      async () => {
        throw new EventPublishError('refused', [event('3').eventId]);
      },
      async () => {},
    );

    await expect(announceRecorded(d, RECORDED)).resolves.toBe(false);

    expect(d.ledger.clearOutbox.mock.calls).toEqual([['a', [event('3').eventId]]]);
    expect(d.metrics.addMetric).toHaveBeenCalledExactlyOnceWith('EventPublishFailed', 'Count', 2);
    expect(d.logger.error).toHaveBeenCalledExactlyOnceWith(
      expect.stringContaining('outbox'),
      expect.objectContaining({ events: 3, naturalKeys: ['a', 'b'] }),
    );
  });

  it('clears nothing and counts every event when publishing failed for another reason', async () => {
    const down = new Error('socket hang up');
    const d = deps(
      async () => {
        throw down;
      },
      async () => {},
    );

    await expect(announceRecorded(d, RECORDED)).resolves.toBe(false);

    expect(d.ledger.clearOutbox).not.toHaveBeenCalled();
    expect(d.metrics.addMetric).toHaveBeenCalledExactlyOnceWith('EventPublishFailed', 'Count', 3);
    expect(d.logger.error).toHaveBeenCalledWith(expect.any(String), expect.objectContaining({ error: down }));
  });

  it('still clears the other keys, and answers true, when one clearing write fails (the event is sent again later)', async () => {
    const conflict = new Error('ConditionalCheckFailed');
    const d = deps(
      async () => {},
      async (key) => {
        if (key === 'a') throw conflict;
      },
    );

    await expect(announceRecorded(d, RECORDED)).resolves.toBe(true);

    expect(d.ledger.clearOutbox).toHaveBeenCalledTimes(2);
    expect(d.logger.warn).toHaveBeenCalledExactlyOnceWith(expect.any(String), {
      error: conflict,
      naturalKey: 'a',
    });
  });

  it('runs each clearing write through the given writer', async () => {
    const d = accepting();
    const writes: string[] = [];
    const write = async <T>(fn: () => Promise<T>): Promise<T> => {
      writes.push('start');
      const out = await fn();
      writes.push('end');
      return out;
    };

    await announceRecorded({ ...d, write }, RECORDED);

    expect(writes).toEqual(['start', 'start', 'end', 'end']);
    expect(d.ledger.clearOutbox).toHaveBeenCalledTimes(2);
  });
});
