/**
 * `npm run retire`'s decision and write on the in-memory ledger, followed by the sweep that
 * announces what it recorded (moto runs the command itself: retire.moto.test.ts).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { planFor, RETIRED_BY_OPERATOR, retireKeys } from '#infra/ops/retire.ts';
import { AtlasApiError } from '#lib/errors.ts';
import {
  buildChecker,
  FakeAtlas,
  type FakeTable,
  NOW,
  plentyOfTime,
  publishedDetails,
  resetAws,
} from '#test/functions/check-status/fixtures.ts';

const reason = { code: RETIRED_BY_OPERATOR, detail: 'project deleted' };

describe('retiring a project by hand', () => {
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
  });

  it.each([
    [{ status: 'ACTIVE' as const }, 'retire'],
    [{ status: 'FAILED' as const, recreating: true }, 'retire'],
    [
      { status: 'REQUESTED' as const, endpointId: undefined, pendingCreate: { sentAt: NOW.toISOString() } },
      'retire',
    ],
    [{ status: 'REQUESTED' as const, endpointId: undefined }, 'nothing to retire'],
    [{ status: 'MISSING' as const, endpointId: undefined }, 'already gone'],
    [{ status: 'DELETED' as const, endpointId: undefined }, 'already gone'],
    [{ status: 'ACTIVE' as const, lease: { owner: 'w', expiresAt: NOW.getTime() } }, 'held by a request'],
    [{ status: 'ACTIVE' as const, lease: { owner: 'w', expiresAt: NOW.getTime() - 1 } }, 'retire'],
  ])('plans %j as %s', (overrides, plan) => {
    expect(planFor(table.put(overrides), NOW)).toBe(plan);
  });

  it('records the retirement for the next sweep, which announces it even while Atlas is down', async () => {
    const item = table.put({ status: 'ACTIVE', requesters: { orders: ['o-1'] } });
    const [retired] = await retireKeys(table.ledger, [item], { reason, dryRun: false, now: NOW });
    expect(retired?.outcome).toBe('retired');
    expect(table.get(item.key)).toMatchObject({ status: 'MISSING', tracked: 'OPEN' });
    const atlas = new FakeAtlas();
    atlas.failNext(
      item.groupId,
      new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'list' }),
    );

    await buildChecker(atlas, { now: () => new Date(NOW.getTime() + 60_000) }).checker.run(plentyOfTime);

    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'MISSING',
        requester: 'orders',
        requestIds: ['o-1'],
        status: 'MISSING',
        error: reason,
        endpointId: item.endpointId,
      }),
    ]);
    expect(table.get(item.key)).not.toHaveProperty('tracked');
    expect(table.get(item.key)).not.toHaveProperty('outbox');
  });

  it('writes nothing on a dry run, and refuses a key written since it was read', async () => {
    const item = table.put({ status: 'ACTIVE' });
    expect(await retireKeys(table.ledger, [item], { reason, dryRun: true, now: NOW })).toMatchObject([
      { outcome: 'would retire' },
    ]);
    expect(table.get(item.key)?.status).toBe('ACTIVE');

    const stale = { ...item, updatedAt: '2026-01-01T00:00:00.000Z' };
    expect(await retireKeys(table.ledger, [stale], { reason, dryRun: false, now: NOW })).toMatchObject([
      { outcome: 'moved on' },
    ]);
    expect(table.get(item.key)?.status).toBe('ACTIVE');
  });
});
