/**
 * The status checker when Atlas does not list a project: what the items' outboxes hold is sent all
 * the same (issue 21: every answer survives an outage), and a project Atlas says does not exist
 * has its keys retired once a later run confirms it.
 */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { beforeEach, describe, expect, it } from 'vitest';
import type { StatusChangedDetail } from '#events/status-event.ts';
import { TRACKED } from '#ledger/schema.ts';
import { AtlasApiError, AtlasNetworkError, CredentialsError } from '#lib/errors.ts';
import { METRIC } from '#runtime/metric-names.ts';
import {
  buildChecker,
  eventBridge,
  FakeAtlas,
  type FakeTable,
  minutesAgo,
  NOW,
  plentyOfTime,
  publishedDetails,
  resetAws,
} from './fixtures.ts';

const listError = (status: number, errorCode: string, detail = `Atlas said ${errorCode}`) =>
  new AtlasApiError({ status, errorCode, detail, operation: 'list' });
const projectGone = (groupId: string) =>
  listError(404, 'GROUP_NOT_FOUND', `No group with ID ${groupId} exists.`);
const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);

/** An event waiting in an item's outbox, as an earlier run or a request left it. */
function pendingEvent(
  item: { key: string; groupId: string; regionName: string; endpointId?: string },
  overrides: Partial<StatusChangedDetail> = {},
): StatusChangedDetail {
  return {
    version: '1',
    eventId: 'a'.repeat(32),
    outcome: 'STATUS_CHANGED',
    requester: 'default',
    requestIds: ['req-0'],
    naturalKey: item.key,
    groupId: item.groupId,
    cloudProvider: 'AWS',
    regionName: item.regionName,
    action: 'create',
    ...(item.endpointId !== undefined && { endpointId: item.endpointId }),
    status: 'ACTIVE',
    occurredAt: minutesAgo(5),
    ...overrides,
  };
}

describe('StatusChecker, every answer survives an outage', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  it.each([
    { name: 'a 503', error: listError(503, 'SERVICE_UNAVAILABLE') },
    { name: 'a 429', error: listError(429, 'RATE_LIMITED') },
    { name: 'a timeout', error: new AtlasNetworkError('list', 'timeout') },
    { name: 'a 401', error: listError(401, 'UNAUTHORIZED') },
    { name: 'a 404 for the project', error: listError(404, 'GROUP_NOT_FOUND') },
    {
      name: 'an unreadable secret',
      error: new CredentialsError('secret "cfn/atlas/profile/x" is not valid JSON', 'x', 'SECRET_MALFORMED'),
    },
  ])(
    'sends the pending events of a followed endpoint whose project answered $name, and clears them',
    async ({ error }) => {
      const item = table.put({ status: 'ACTIVE' });
      const pending = pendingEvent(item);
      table.ledger.store({ ...item, outbox: { [pending.eventId]: pending } });
      atlas.failNext(item.groupId, error);
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(publishedDetails()).toEqual([pending]);
      expect(table.get(item.key)).not.toHaveProperty('outbox');
      // Still followed: the next run checks it again.
      expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', tracked: TRACKED });
    },
  );

  it('delivers an item that has only an outbox to deliver while Atlas is down, and stops visiting it', async () => {
    const item = table.put({ status: 'DELETED', endpointId: undefined, action: 'delete' });
    const answer = pendingEvent(item, { outcome: 'DELETED', status: 'DELETED', messageId: 'm-1' });
    table.ledger.store({ ...item, outbox: { [answer.eventId]: answer } });
    atlas.failNext(item.groupId, listError(500, 'UNEXPECTED_ERROR'));
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(publishedDetails()).toEqual([answer]);
    expect(table.get(item.key)).not.toHaveProperty('outbox');
    expect(table.get(item.key)).not.toHaveProperty('tracked');
  });

  it('keeps the events EventBridge refused while Atlas is down, for the next run', async () => {
    const item = table.put({ status: 'ACTIVE' });
    const pending = pendingEvent(item);
    table.ledger.store({ ...item, outbox: { [pending.eventId]: pending } });
    atlas.failNext(item.groupId, listError(503, 'SERVICE_UNAVAILABLE'));
    eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
    const { checker, metrics } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(table.get(item.key)?.outbox).toEqual({ [pending.eventId]: pending });
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.eventPublishFailed, 'Count', 1);
  });

  it('sends the pending events of an item written after its project was listed, leaving its check to the next run', async () => {
    const item = table.put({ status: 'INITIATING', updatedAt: at(1).toISOString() });
    const pending = pendingEvent(item, { status: 'INITIATING' });
    table.ledger.store({ ...item, outbox: { [pending.eventId]: pending } });
    atlas.seedFor(item, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 0, skipped: 1 });

    expect(publishedDetails()).toEqual([pending]);
    expect(table.get(item.key)).toMatchObject({ status: 'INITIATING' });
  });
});

describe('StatusChecker, a project that no longer exists', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  const runAt = (minutes: number, overrides: Parameters<typeof buildChecker>[1] = {}) =>
    buildChecker(atlas, { now: () => at(minutes), ...overrides });

  it('remembers the first answer that the project does not exist, alarms, and changes nothing else', async () => {
    const item = table.put({ status: 'ACTIVE', atlasErrorMessage: 'kept' });
    atlas.failNext(item.groupId, projectGone(item.groupId));
    const { checker, metrics } = runAt(0);

    await checker.run(plentyOfTime);

    expect(table.get(item.key)).toMatchObject({
      status: 'ACTIVE',
      endpointId: item.endpointId,
      projectGoneSince: NOW.toISOString(),
      atlasErrorMessage: 'kept',
      tracked: TRACKED,
    });
    expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.checkFailed, 'Count', 1);
  });

  it('retires the keys of a project Atlas says is gone again at least 10 minutes later: MISSING with the reason, one event per requester', async () => {
    const group = 'dddddddddddddddddddddddd';
    const active = table.put({
      groupId: group,
      status: 'ACTIVE',
      requesters: { orders: ['o-1'], billing: ['b-1'] },
      holds: ['orders', 'billing'],
    });
    const initiating = table.put({ groupId: group, status: 'INITIATING' });
    atlas.failNext(group, projectGone(group), projectGone(group), projectGone(group));
    await runAt(0).checker.run(plentyOfTime);
    expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);

    const { checker, metrics } = runAt(10);
    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ changed: 2, missing: 2 });
    for (const item of [active, initiating]) {
      const stored = table.get(item.key);
      expect(stored).toMatchObject({
        status: 'MISSING',
        statusSince: at(10).toISOString(),
        lastError: {
          code: 'GROUP_NOT_FOUND',
          httpStatus: 404,
          detail: `No group with ID ${group} exists.`,
          at: at(10).toISOString(),
        },
      });
      for (const gone of ['endpointId', 'holds', 'projectGoneSince', 'outbox', 'tracked'])
        expect(stored).not.toHaveProperty(gone);
    }
    const events = publishedDetails();
    expect(events.map((e) => [e.naturalKey, e.requester]).sort()).toEqual(
      [
        [active.key, 'billing'],
        [active.key, 'orders'],
        [initiating.key, 'default'],
      ].sort(),
    );
    expect(events.find((e) => e.requester === 'orders')).toMatchObject({
      outcome: 'MISSING',
      requestIds: ['o-1'],
      endpointId: active.endpointId,
      previousStatus: 'ACTIVE',
      status: 'MISSING',
      error: { code: 'GROUP_NOT_FOUND', httpStatus: 404, detail: `No group with ID ${group} exists.` },
      statusSince: at(10).toISOString(),
    });
    expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.missing, 'Count', 2);

    // Untracked: the next run asks Atlas nothing about it, and nothing alarms.
    const calls = atlas.listCallsFor(group);
    const next = runAt(20);
    await next.checker.run(plentyOfTime);
    expect(atlas.listCallsFor(group)).toBe(calls);
    expect(next.metrics.addMetric).not.toHaveBeenCalledWith(METRIC.checkFailed, 'Count', 1);
  });

  it('retires nothing on a second answer that comes too soon, and does on a later one', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.failNext(
      item.groupId,
      projectGone(item.groupId),
      projectGone(item.groupId),
      projectGone(item.groupId),
    );

    await runAt(0).checker.run(plentyOfTime);
    await runAt(9).checker.run(plentyOfTime);
    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', projectGoneSince: NOW.toISOString() });

    await runAt(15, { projectGoneConfirmMinutes: 15 }).checker.run(plentyOfTime);
    expect(table.get(item.key)).toMatchObject({ status: 'MISSING' });
  });

  it('forgets the first answer once Atlas lists the project again', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'ACTIVE');
    atlas.failNext(item.groupId, projectGone(item.groupId));
    await runAt(0).checker.run(plentyOfTime);
    expect(table.get(item.key)).toHaveProperty('projectGoneSince');

    await runAt(5).checker.run(plentyOfTime);
    atlas.failNext(item.groupId, projectGone(item.groupId));
    await runAt(15).checker.run(plentyOfTime);

    // The answer at 15 minutes is a first one again.
    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', projectGoneSince: at(15).toISOString() });
  });

  it.each([
    { name: 'RESOURCE_NOT_FOUND', error: listError(404, 'RESOURCE_NOT_FOUND') },
    { name: 'an unknown code', error: listError(404, 'NOT_FOUND') },
    { name: 'a 403', error: listError(403, 'USER_CANNOT_ACCESS_ORG') },
  ])('never takes a listing that answered $name for a project gone', async ({ error }) => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.failNext(item.groupId, error, error);

    await runAt(0).checker.run(plentyOfTime);
    await runAt(60).checker.run(plentyOfTime);

    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', endpointId: item.endpointId });
    expect(table.get(item.key)).not.toHaveProperty('projectGoneSince');
  });

  it('leaves a key a provisioner holds to a later run, and retires nothing already gone', async () => {
    const group = 'eeeeeeeeeeeeeeeeeeeeeeee';
    const held = table.put({ groupId: group, status: 'ACTIVE' });
    const missing = table.put({
      groupId: group,
      status: 'MISSING',
      endpointId: undefined,
      tracked: undefined,
    });
    const earlier = pendingEvent(missing, { outcome: 'MISSING', status: 'MISSING' });
    table.ledger.store({
      ...table.get(missing.key),
      ...missing,
      tracked: TRACKED,
      outbox: { [earlier.eventId]: earlier },
    });
    atlas.failNext(group, projectGone(group), projectGone(group));
    await runAt(0).checker.run(plentyOfTime);
    const stored = table.get(held.key);
    if (stored) stored.lease = { owner: 'worker', expiresAt: at(11).getTime() };

    await runAt(10).checker.run(plentyOfTime);

    expect(table.get(held.key)).toMatchObject({ status: 'ACTIVE', projectGoneSince: NOW.toISOString() });
    expect(table.get(missing.key)).toMatchObject({ status: 'MISSING' });
    expect(table.get(missing.key)).not.toHaveProperty('lastError');
    expect(publishedDetails()).toEqual([earlier]);
  });
});

describe('StatusChecker, answers kept with no key', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  const rejection = (eventId: string): StatusChangedDetail => ({
    version: '1',
    eventId,
    outcome: 'REJECTED',
    requester: 'default',
    requestIds: ['req-bad'],
    messageId: 'm-1',
    error: {
      code: 'INVALID_REQUEST',
      detail: 'groupId: must be a 24-character lowercase hex Atlas project id',
    },
    occurredAt: minutesAgo(3),
  });

  it('sends an answer a parked request left with EventBridge down, whatever Atlas does, then deletes its item', async () => {
    await table.ledger.keepAnswer(rejection('b'.repeat(32)));
    const followed = table.put({ status: 'INITIATING' });
    atlas.failNext(followed.groupId, listError(503, 'SERVICE_UNAVAILABLE'));
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(publishedDetails()).toEqual([
      expect.objectContaining({ eventId: 'b'.repeat(32), outcome: 'REJECTED' }),
    ]);
    expect([...table.items.keys()].filter((k) => k.startsWith('answer#'))).toEqual([]);
    expect(atlas.calls).toHaveLength(1);
  });

  it('keeps an answer EventBridge still refuses, for the next run', async () => {
    await table.ledger.keepAnswer(rejection('c'.repeat(32)));
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    const kept = table.items.get(`answer#${'c'.repeat(32)}`);
    expect(Object.keys(kept?.outbox ?? {})).toEqual(['c'.repeat(32)]);
    expect(kept?.tracked).toBe(TRACKED);
  });
});
