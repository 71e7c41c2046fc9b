import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { deadlineOf } from '#check-status/status-checker.ts';
import { requesterEventId } from '#events/status-change.ts';
import { eventIdOf, type StatusChangedDetail } from '#events/status-event.ts';
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

const apiError = (status: number, errorCode: string) =>
  new AtlasApiError({ status, errorCode, detail: `Atlas said ${errorCode}`, operation: 'list' });

/** Statuses the checker follows, and one Atlas may add later. */
const FOLLOWED = [
  'INITIATING',
  'PENDING_ACCEPTANCE',
  'ACTIVE',
  'PENDING_RECREATION',
  'DELETING',
  'RESHARDING',
];
const ATLAS_ANSWERS = [...FOLLOWED, 'FAILED'];
const TRANSITIONS = FOLLOWED.flatMap((from) =>
  ATLAS_ANSWERS.filter((to) => to !== from).map((to) => ({ from, to })),
);

describe('StatusChecker', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  describe('status changes', () => {
    it.each(TRANSITIONS)('records and announces $from -> $to', async ({ from, to }) => {
      // Prepare
      const item = table.put({
        status: from,
        requesters: { default: ['req-a', 'req-b'] },
        vpcRegionName: 'EU_WEST_1',
      });
      atlas.seedFor(item, to, to === 'FAILED' ? 'the VPC endpoint was rejected' : undefined);
      const { checker, metrics } = buildChecker(atlas);

      // Act
      const summary = await checker.run(plentyOfTime);

      // Assess
      expect(summary).toMatchObject({ checked: 1, changed: 1, stuck: 0, missing: 0, skipped: 0 });
      expect(table.get(item.key)).toMatchObject({
        status: to,
        statusSince: NOW.toISOString(),
        checkedAt: NOW.toISOString(),
      });
      // FAILED stays followed: its key goes back to the provisioner, which recreates it.
      expect(table.get(item.key)?.tracked).toBe(TRACKED);
      expect(publishedDetails()).toEqual([
        {
          version: '1',
          eventId: expect.stringMatching(/^[a-f0-9]{32}$/),
          outcome: 'STATUS_CHANGED',
          requester: 'default',
          requestIds: ['req-a', 'req-b'],
          naturalKey: item.key,
          groupId: item.groupId,
          cloudProvider: 'AWS',
          regionName: item.regionName,
          vpcRegionName: 'EU_WEST_1',
          action: 'create',
          endpointId: item.endpointId,
          previousStatus: from,
          status: to,
          ...(to === 'FAILED' && { errorMessage: 'the VPC endpoint was rejected' }),
          statusSince: NOW.toISOString(),
          occurredAt: NOW.toISOString(),
        },
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('StatusChanged', 'Count', 1);
    });

    it('keeps the item and its clock when Atlas reports the same status, but moves checkedAt', async () => {
      const item = table.put({ status: 'ACTIVE', statusSince: minutesAgo(90_000) });
      atlas.seedFor(item, 'ACTIVE');
      const { checker, metrics } = buildChecker(atlas);

      const summary = await checker.run(plentyOfTime);

      expect(summary).toMatchObject({ checked: 1, changed: 0 });
      expect(table.get(item.key)).toMatchObject({
        status: 'ACTIVE',
        statusSince: minutesAgo(90_000),
        checkedAt: NOW.toISOString(),
        tracked: TRACKED,
      });
      expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
      expect(metrics.addMetric).toHaveBeenCalledWith('CheckedEndpoints', 'Count', 1);
      expect(metrics.addMetric).toHaveBeenCalledWith('StatusChanged', 'Count', 0);
    });

    it('keeps a status it does not know and logs it, without failing the run', async () => {
      const item = table.put({ status: 'INITIATING' });
      atlas.seedFor(item, 'QUIESCING');
      const { checker, logger } = buildChecker(atlas);
      const warn = vi.spyOn(logger, 'warn');

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 1 });

      expect(table.get(item.key)).toMatchObject({ status: 'QUIESCING', tracked: TRACKED });
      expect(warn).toHaveBeenCalledWith(
        expect.stringContaining('does not know'),
        expect.objectContaining({ status: 'QUIESCING', naturalKey: item.key }),
      );
    });

    it("records Atlas's errorMessage and clears it once Atlas no longer gives one", async () => {
      const withMessage = table.put({ status: 'PENDING_ACCEPTANCE' });
      const cleared = table.put({ status: 'INITIATING', atlasErrorMessage: 'transient' });
      atlas.seedFor(withMessage, 'PENDING_ACCEPTANCE', 'waiting for the interface endpoint');
      atlas.seedFor(cleared, 'INITIATING');
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(table.get(withMessage.key)?.atlasErrorMessage).toBe('waiting for the interface endpoint');
      expect(table.get(cleared.key)).not.toHaveProperty('atlasErrorMessage');
    });
  });

  describe('endpoints gone from Atlas', () => {
    it('reports drift: an ACTIVE endpoint missing from the listing becomes MISSING, with an event and a metric', async () => {
      // Prepare
      const item = table.put({ status: 'ACTIVE' });
      const { checker, metrics } = buildChecker(atlas);

      // Act
      const summary = await checker.run(plentyOfTime);

      // Assess
      expect(summary).toMatchObject({ checked: 1, changed: 1, missing: 1 });
      expect(table.get(item.key)).toMatchObject({ status: 'MISSING' });
      expect(table.get(item.key)).not.toHaveProperty('tracked');
      expect(publishedDetails()).toEqual([
        expect.objectContaining({
          outcome: 'MISSING',
          previousStatus: 'ACTIVE',
          status: 'MISSING',
          endpointId: item.endpointId,
        }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('Missing', 'Count', 1);
    });

    it('reports an endpoint of a create request that vanished while INITIATING as MISSING', async () => {
      const item = table.put({ status: 'INITIATING' });
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(table.get(item.key)).toMatchObject({ status: 'MISSING' });
      expect(publishedDetails()[0]).toMatchObject({ outcome: 'MISSING', previousStatus: 'INITIATING' });
    });

    it.each([
      { action: 'delete', status: 'DELETING' },
      { action: 'delete', status: 'ACTIVE' },
      { action: 'create', status: 'DELETING' },
    ] as const)(
      'reports a $action request in $status whose endpoint is gone as DELETED',
      async ({ action, status }) => {
        const item = table.put({ action, status });
        const { checker, metrics } = buildChecker(atlas);

        const summary = await checker.run(plentyOfTime);

        expect(summary).toMatchObject({ changed: 1, missing: 0 });
        expect(table.get(item.key)).toMatchObject({ status: 'DELETED' });
        expect(table.get(item.key)).not.toHaveProperty('tracked');
        expect(publishedDetails()).toEqual([
          expect.objectContaining({ outcome: 'DELETED', action, previousStatus: status, status: 'DELETED' }),
        ]);
        expect(metrics.addMetric).toHaveBeenCalledWith('Missing', 'Count', 0);
      },
    );
  });

  describe('deadlines', () => {
    it.each([
      { status: 'PENDING_ACCEPTANCE', deadline: 'pendingAcceptanceMinutes' },
      { status: 'INITIATING', deadline: 'inProgressMinutes' },
      { status: 'PENDING_RECREATION', deadline: 'inProgressMinutes' },
      { status: 'DELETING', deadline: 'inProgressMinutes' },
      { status: 'SOMETHING_NEW', deadline: 'inProgressMinutes' },
      { status: 'ACTIVE', deadline: undefined },
      { status: 'FAILED', deadline: undefined },
      { status: 'REQUESTED', deadline: undefined },
      { status: 'DELETED', deadline: undefined },
      { status: 'MISSING', deadline: undefined },
    ])('gives $status the deadline $deadline', ({ status, deadline }) => {
      expect(deadlineOf(status)).toBe(deadline);
    });

    it.each([
      { status: 'PENDING_ACCEPTANCE', minutes: 1_441 },
      { status: 'INITIATING', minutes: 61 },
      { status: 'PENDING_RECREATION', minutes: 61 },
      { status: 'DELETING', minutes: 61 },
      { status: 'SOMETHING_NEW', minutes: 61 },
    ])(
      'marks an endpoint $minutes minutes in $status stuck once: one event, one metric, then never again',
      async ({ status, minutes }) => {
        // Prepare
        const item = table.put({ status, statusSince: minutesAgo(minutes), checkedAt: minutesAgo(1) });
        atlas.seedFor(item, status);
        const first = buildChecker(atlas);

        // Act
        const summary = await first.checker.run(plentyOfTime);
        const later = buildChecker(atlas, { now: () => new Date(NOW.getTime() + 3_600_000) });
        const laterSummary = await later.checker.run(plentyOfTime);

        // Assess
        expect(summary).toMatchObject({ checked: 1, changed: 0, stuck: 1 });
        expect(laterSummary).toMatchObject({ checked: 1, stuck: 0 });
        expect(table.get(item.key)).toMatchObject({
          status,
          stuckAt: NOW.toISOString(),
          statusSince: minutesAgo(minutes),
          tracked: TRACKED,
        });
        expect(publishedDetails()).toEqual([
          expect.objectContaining({
            outcome: 'STUCK',
            status,
            statusSince: minutesAgo(minutes),
            endpointId: item.endpointId,
            occurredAt: NOW.toISOString(),
          }),
        ]);
        expect(publishedDetails()[0]).not.toHaveProperty('previousStatus');
        expect(first.metrics.addMetric).toHaveBeenCalledWith('Stuck', 'Count', 1);
        expect(later.metrics.addMetric).toHaveBeenCalledWith('Stuck', 'Count', 0);
      },
    );

    it.each([
      { status: 'PENDING_ACCEPTANCE', minutes: 1_439 },
      { status: 'INITIATING', minutes: 59 },
      { status: 'INITIATING', minutes: 60 },
      { status: 'ACTIVE', minutes: 100_000 },
    ])('does not mark an endpoint $minutes minutes in $status stuck', async ({ status, minutes }) => {
      const item = table.put({ status, statusSince: minutesAgo(minutes) });
      atlas.seedFor(item, status);
      const { checker } = buildChecker(atlas);

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, stuck: 0 });
      expect(table.get(item.key)).not.toHaveProperty('stuckAt');
      expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
    });

    it('applies the configured deadlines', async () => {
      const item = table.put({ status: 'PENDING_ACCEPTANCE', statusSince: minutesAgo(11) });
      atlas.seedFor(item, 'PENDING_ACCEPTANCE');
      const { checker } = buildChecker(atlas, {
        deadlines: { pendingAcceptanceMinutes: 10, inProgressMinutes: 1_000 },
      });

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ stuck: 1 });
    });

    it('restarts the clock and forgets being stuck when the status finally changes', async () => {
      const item = table.put({
        status: 'PENDING_ACCEPTANCE',
        statusSince: minutesAgo(5_000),
        stuckAt: minutesAgo(3_000),
      });
      atlas.seedFor(item, 'ACTIVE');
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', statusSince: NOW.toISOString() });
      expect(table.get(item.key)).not.toHaveProperty('stuckAt');
      expect(publishedDetails().map((d) => d.outcome)).toEqual(['STATUS_CHANGED']);
    });
  });

  describe('Atlas calls', () => {
    it('lists each project once per run, whatever the number of its endpoints, per profile and provider', async () => {
      // Prepare
      const groupA = 'aaaaaaaaaaaaaaaaaaaaaaaa';
      const groupB = 'bbbbbbbbbbbbbbbbbbbbbbbb';
      for (let i = 0; i < 12; i++) atlas.seedFor(table.put({ groupId: groupA }), 'ACTIVE');
      for (let i = 0; i < 5; i++) atlas.seedFor(table.put({ groupId: groupB }), 'ACTIVE');
      atlas.seedFor(table.put({ groupId: groupB, profile: 'team-b' }), 'ACTIVE');
      const { checker } = buildChecker(atlas);

      // Act
      const summary = await checker.run(plentyOfTime);

      // Assess
      expect(summary).toMatchObject({ checked: 18, projects: 3 });
      expect(atlas.calls).toHaveLength(3);
      expect(atlas.calls).toEqual(
        expect.arrayContaining([
          { profile: 'default', groupId: groupA, cloudProvider: 'AWS' },
          { profile: 'default', groupId: groupB, cloudProvider: 'AWS' },
          { profile: 'team-b', groupId: groupB, cloudProvider: 'AWS' },
        ]),
      );
    });

    it('pages through the ledger, listing a project found on several pages only once', async () => {
      // Prepare
      const groupA = 'aaaaaaaaaaaaaaaaaaaaaaaa';
      const groupB = 'bbbbbbbbbbbbbbbbbbbbbbbb';
      const items = Array.from({ length: 9 }, (_, i) =>
        table.put({ groupId: i % 2 ? groupA : groupB, status: 'ACTIVE', checkedAt: minutesAgo(100 - i) }),
      );
      for (const item of items) atlas.seedFor(item, 'ACTIVE');
      const { checker } = buildChecker(atlas, { pageSize: 2 });

      // Act
      const summary = await checker.run(plentyOfTime);

      // Assess
      expect(summary).toMatchObject({ checked: 9, changed: 0, skipped: 0, projects: 2 });
      expect(atlas.listCallsFor(groupA)).toBe(1);
      expect(atlas.listCallsFor(groupB)).toBe(1);
      for (const item of items) expect(table.get(item.key)?.status).toBe('ACTIVE');
      for (const item of items) expect(table.get(item.key)?.checkedAt).toBe(NOW.toISOString());
    });

    it('leaves to the next run an item a provisioner wrote after its project was listed', async () => {
      // Prepare
      const groupId = 'cccccccccccccccccccccccc';
      const listedFirst = table.put({ groupId, status: 'ACTIVE', checkedAt: minutesAgo(20) });
      const deletedMeanwhile = table.put({ groupId, status: 'ACTIVE', checkedAt: minutesAgo(10) });
      atlas.seedFor(listedFirst, 'ACTIVE');
      atlas.seedFor(deletedMeanwhile, 'ACTIVE');
      // A clock that moves a second on every reading.
      let ticks = 0;
      const now = () => {
        ticks += 1;
        return new Date(NOW.getTime() + ticks * 1_000);
      };
      const { checker } = buildChecker(atlas, {
        pageSize: 1,
        now,
        atlas: {
          withClient: async (profile, fn) => {
            const listed = await atlas.profiles.withClient(profile, fn);
            // A delete request settles after the listing was taken, before the item's page is read.
            const raw = table.get(deletedMeanwhile.key);
            if (raw) Object.assign(raw, { status: 'DELETING', updatedAt: now().toISOString() });
            return listed;
          },
        },
      });

      // Act
      const summary = await checker.run(plentyOfTime);

      // Assess
      expect(summary).toMatchObject({ checked: 1, changed: 0, skipped: 1, projects: 1 });
      expect(table.get(deletedMeanwhile.key)).toMatchObject({
        status: 'DELETING',
        checkedAt: minutesAgo(10),
      });
      expect(publishedDetails()).toEqual([]);
    });

    it('checks each item once even though recorded items come round again at the end of the index', async () => {
      for (let i = 0; i < 5; i++) atlas.seedFor(table.put({ checkedAt: minutesAgo(10 - i) }), 'ACTIVE');
      const { checker } = buildChecker(atlas, { pageSize: 2 });

      const summary = await checker.run(plentyOfTime);

      expect(summary.checked).toBe(5);
      expect(table.ledger.writes.filter((w) => w === 'recordCheck')).toHaveLength(5);
    });

    it('lists at most projectConcurrency projects at once', async () => {
      for (let i = 0; i < 10; i++) atlas.seedFor(table.put(), 'ACTIVE');
      atlas.latencyMs = 5;
      let active = 0;
      let peak = 0;
      const counting = {
        withClient: async <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) => {
          active += 1;
          peak = Math.max(peak, active);
          try {
            return await atlas.profiles.withClient(profile, fn);
          } finally {
            active -= 1;
          }
        },
      };
      const { checker } = buildChecker(atlas, { atlas: counting, projectConcurrency: 3 });

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 10, projects: 10 });
      expect(peak).toBe(3);
    });
  });

  describe('Atlas failures', () => {
    it.each([
      { name: '429', error: apiError(429, 'RATE_LIMITED') },
      { name: '500', error: apiError(500, 'UNEXPECTED_ERROR') },
      { name: '503', error: apiError(503, 'SERVICE_UNAVAILABLE') },
      { name: 'a timeout', error: new AtlasNetworkError('list', 'timeout') },
      { name: 'a reset connection', error: new AtlasNetworkError('list', 'network') },
    ])(
      'leaves the items of a project that answered $name untouched, oldest first for the next run',
      async ({ error }) => {
        // Prepare
        const failing = table.put({ status: 'INITIATING', checkedAt: minutesAgo(30) });
        const healthy = table.put({ status: 'INITIATING', checkedAt: minutesAgo(20) });
        atlas.seedFor(failing, 'ACTIVE');
        atlas.seedFor(healthy, 'ACTIVE');
        atlas.failNext(failing.groupId, error);
        const before = structuredClone(table.get(failing.key));
        const { checker, metrics } = buildChecker(atlas);

        // Act
        const summary = await checker.run(plentyOfTime);

        // Assess
        expect(summary).toMatchObject({ checked: 1, changed: 1, skipped: 1 });
        expect(table.get(failing.key)).toEqual(before);
        expect(table.get(healthy.key)).toMatchObject({ status: 'ACTIVE' });
        expect(publishedDetails().map((d) => d.naturalKey)).toEqual([healthy.key]);
        expect(metrics.addMetric).not.toHaveBeenCalledWith(METRIC.checkFailed, 'Count', 1);

        // The next run takes the untouched item first and announces its change.
        eventBridge.resetHistory();
        const later = new Date(NOW.getTime() + 300_000);
        const next = await buildChecker(atlas, {
          now: () => later,
          pageSize: 1,
          projectConcurrency: 1,
        }).checker.run(plentyOfTime);
        expect(next).toMatchObject({ checked: 2, changed: 1 });
        expect(atlas.calls.at(-2)?.groupId).toBe(failing.groupId);
        expect(publishedDetails().map((d) => d.naturalKey)).toEqual([failing.key]);
      },
    );

    it.each([
      { name: '401', error: apiError(401, 'UNAUTHORIZED') },
      { name: '403', error: apiError(403, 'USER_CANNOT_ACCESS_ORG') },
      {
        name: 'an unreadable secret',
        error: new CredentialsError(
          'secret "cfn/atlas/profile/x" is not valid JSON',
          'x',
          'SECRET_MALFORMED',
        ),
      },
    ])(
      'logs and counts a project that answered $name for an operator, leaving its items untouched',
      async ({ error }) => {
        const item = table.put({ status: 'INITIATING' });
        atlas.failNext(item.groupId, error);
        const before = structuredClone(table.get(item.key));
        const { checker, metrics, logger } = buildChecker(atlas);
        const logError = vi.spyOn(logger, 'error');

        const summary = await checker.run(plentyOfTime);

        expect(summary).toMatchObject({ checked: 0, skipped: 1 });
        expect(table.get(item.key)).toEqual(before);
        expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
        expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.checkFailed, 'Count', 1);
        expect(logError).toHaveBeenCalledWith(
          expect.stringContaining('operator'),
          expect.objectContaining({
            groupId: item.groupId,
            failure: expect.objectContaining({ disposition: 'dlq' }),
          }),
        );
      },
    );

    it('does not turn a failed listing into a status: no item of the project becomes MISSING', async () => {
      const group = 'cccccccccccccccccccccccc';
      const items = [
        table.put({ groupId: group, status: 'ACTIVE' }),
        table.put({ groupId: group, status: 'ACTIVE' }),
      ];
      atlas.failNext(group, apiError(503, 'SERVICE_UNAVAILABLE'));
      const { checker } = buildChecker(atlas, { pageSize: 1 });

      await checker.run(plentyOfTime);

      expect(atlas.listCallsFor(group)).toBe(1);
      for (const item of items) expect(table.get(item.key)?.status).toBe('ACTIVE');
    });
  });

  describe('time budget', () => {
    it('stops starting projects below the safety margin, and the next run continues with the oldest', async () => {
      // Prepare
      const items = Array.from({ length: 6 }, (_, i) =>
        table.put({ status: 'ACTIVE', checkedAt: minutesAgo(60 - i) }),
      );
      for (const item of items) atlas.seedFor(item, 'ACTIVE');
      let remaining = 25_000;
      const clock = {
        withClient: async <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) => {
          remaining -= 10_000;
          return atlas.profiles.withClient(profile, fn);
        },
      };
      const { checker } = buildChecker(atlas, { atlas: clock, projectConcurrency: 1, pageSize: 3 });

      // Act
      const summary = await checker.run({ remainingMs: () => remaining });

      // Assess
      expect(summary).toMatchObject({ checked: 2, skipped: 1, stoppedEarly: true, projects: 2 });
      expect(items.map((i) => table.get(i.key)?.checkedAt)).toEqual([
        NOW.toISOString(),
        NOW.toISOString(),
        minutesAgo(58),
        minutesAgo(57),
        minutesAgo(56),
        minutesAgo(55),
      ]);

      const later = new Date(NOW.getTime() + 300_000);
      const next = await buildChecker(atlas, {
        now: () => later,
        pageSize: 2,
        projectConcurrency: 1,
      }).checker.run(plentyOfTime);
      expect(next).toMatchObject({ checked: 6, stoppedEarly: false });
      expect(atlas.calls.slice(2).map((c) => c.groupId)).toEqual(
        [...items.slice(2), ...items.slice(0, 2)].map((i) => i.groupId),
      );
    });

    it('caps the safety margin at half the time left at the start, so a short timeout still checks', async () => {
      atlas.seedFor(table.put({ status: 'ACTIVE' }), 'ACTIVE');
      const { checker } = buildChecker(atlas, { safetyMarginMs: 10_000 });

      const summary = await checker.run({ remainingMs: () => 8_000 });

      expect(summary).toMatchObject({ checked: 1, stoppedEarly: false });
    });

    it('reads no ledger page once the time left falls below the margin', async () => {
      table.put();
      const { checker } = buildChecker(atlas);
      const remaining = vi.fn().mockReturnValueOnce(60_000).mockReturnValue(9_999);

      const summary = await checker.run({ remainingMs: remaining });

      expect(summary).toMatchObject({ checked: 0, stoppedEarly: true });
      expect(table.ledger.writes).toEqual([]);
      expect(atlas.calls).toEqual([]);
    });
  });

  describe('per requester', () => {
    it('announces a change once to each requester with requestIds on the key, each with its own requestIds and eventId', async () => {
      const item = table.put({
        status: 'INITIATING',
        requesters: { 'team-b': ['b-1'], 'team-a': ['a-1', 'a-2'], gone: [] },
      });
      atlas.seedFor(item, 'ACTIVE');
      const { checker } = buildChecker(atlas);

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 1 });

      const details = publishedDetails();
      expect(details.map((d) => [d.requester, d.requestIds])).toEqual([
        ['team-a', ['a-1', 'a-2']],
        ['team-b', ['b-1']],
      ]);
      const fact = eventIdOf('STATUS_CHANGED', item.key, item.endpointId, 'ACTIVE', NOW.toISOString());
      expect(details.map((d) => d.eventId)).toEqual([
        requesterEventId(fact, 'team-a'),
        requesterEventId(fact, 'team-b'),
      ]);
      const { requester: _a, requestIds: _ia, eventId: _ea, ...a } = details[0] as StatusChangedDetail;
      const { requester: _b, requestIds: _ib, eventId: _eb, ...b } = details[1] as StatusChangedDetail;
      expect(a).toEqual(b);
      expect(table.get(item.key)).not.toHaveProperty('outbox');
    });

    it('announces a change of a key no requester has requestIds on once, to the default requester', async () => {
      const item = table.put({ status: 'INITIATING', requesters: {} });
      atlas.seedFor(item, 'ACTIVE');
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(publishedDetails()).toEqual([
        expect.objectContaining({ requester: 'default', requestIds: [], status: 'ACTIVE' }),
      ]);
    });

    it('forgets the holds of a key whose endpoint Atlas no longer lists', async () => {
      const item = table.put({ status: 'DELETING', action: 'delete', holds: ['team-a'] });
      const { checker } = buildChecker(atlas);

      await checker.run(plentyOfTime);

      expect(table.get(item.key)).toMatchObject({ status: 'DELETED' });
      expect(table.get(item.key)).not.toHaveProperty('holds');
    });
  });

  describe('publishing and recording', () => {
    it('records a change with its event in the outbox, counts a refused publish, and sends the same event next run', async () => {
      // Prepare
      const changing = table.put({ groupId: 'dddddddddddddddddddddddd', status: 'INITIATING' });
      const steady = table.put({ groupId: 'dddddddddddddddddddddddd', status: 'ACTIVE' });
      atlas.seedFor(changing, 'ACTIVE');
      atlas.seedFor(steady, 'ACTIVE');
      eventBridge
        .on(PutEventsCommand)
        .resolvesOnce({
          FailedEntryCount: 1,
          Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
        })
        .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-2' }] });

      // Act
      const firstRun = buildChecker(atlas);
      const first = await firstRun.checker.run(plentyOfTime);

      // Assess: recorded as it will be announced, the event kept
      expect(first).toMatchObject({ checked: 2, changed: 1 });
      const recorded = table.get(changing.key);
      expect(recorded).toMatchObject({ status: 'ACTIVE', statusSince: NOW.toISOString() });
      const [kept] = Object.values(recorded?.outbox ?? {});
      expect(kept).toMatchObject({
        outcome: 'STATUS_CHANGED',
        status: 'ACTIVE',
        statusSince: NOW.toISOString(),
      });
      expect(firstRun.metrics.addMetric).toHaveBeenCalledWith(METRIC.eventPublishFailed, 'Count', 1);

      // Act: the next run drains the outbox and announces nothing new
      const second = await buildChecker(atlas, { now: () => new Date(NOW.getTime() + 60_000) }).checker.run(
        plentyOfTime,
      );

      // Assess: the same fact, the same eventId, never a second change
      expect(second).toMatchObject({ checked: 2, changed: 0 });
      expect(publishedDetails().map((d) => d.eventId)).toEqual([kept?.eventId, kept?.eventId]);
      expect(table.get(changing.key)).not.toHaveProperty('outbox');
    });

    it('announces up to ten changes per PutEvents call', async () => {
      const group = 'eeeeeeeeeeeeeeeeeeeeeeee';
      for (let i = 0; i < 23; i++)
        atlas.seedFor(table.put({ groupId: group, status: 'INITIATING' }), 'ACTIVE');
      const { checker } = buildChecker(atlas);

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 23 });

      expect(eventBridge).toHaveReceivedCommandTimes(PutEventsCommand, 3);
      expect(publishedDetails()).toHaveLength(23);
    });

    it('leaves a key a provisioner holds to the provisioner', async () => {
      const item = table.put({ status: 'INITIATING' });
      const stored = table.get(item.key);
      if (stored) stored.lease = { owner: 'worker', expiresAt: NOW.getTime() + 60_000 };
      atlas.seedFor(item, 'ACTIVE');
      const { checker } = buildChecker(atlas);

      await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 0, skipped: 1 });
      expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);

      expect(table.get(item.key)).toMatchObject({ status: 'INITIATING', checkedAt: item.checkedAt });
    });

    it('keeps checking other items when one ledger write fails', async () => {
      const failing = table.put({ status: 'ACTIVE' });
      const healthy = table.put({ status: 'ACTIVE' });
      atlas.seedFor(failing, 'ACTIVE');
      atlas.seedFor(healthy, 'ACTIVE');
      const recordCheck = table.ledger.recordCheck.bind(table.ledger);
      vi.spyOn(table.ledger, 'recordCheck').mockImplementation((key, ...rest) =>
        key === failing.key
          ? Promise.reject(
              Object.assign(new Error('Throughput exceeds the current capacity'), {
                name: 'ThrottlingException',
              }),
            )
          : recordCheck(key, ...rest),
      );
      const { checker } = buildChecker(atlas);

      const summary = await checker.run(plentyOfTime);

      expect(summary).toMatchObject({ checked: 1, skipped: 1 });
      expect(table.get(healthy.key)?.checkedAt).toBe(NOW.toISOString());
    });

    it('fails the run when the ledger cannot be read', async () => {
      vi.spyOn(table.ledger, 'listTracked').mockRejectedValue(
        Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      );
      const { checker } = buildChecker(atlas);

      await expect(checker.run(plentyOfTime)).rejects.toThrow('Requested resource not found');
    });
  });
});

describe('StatusChecker, never a wrong answer', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  it('hands a key whose endpoint turned FAILED back to the provisioner, with the request it answered', async () => {
    const item = table.put({ status: 'ACTIVE', requesters: { default: ['req-a', 'req-b'] } });
    atlas.seedFor(item, 'FAILED', 'the interface endpoint was deleted in the VPC');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send } });

    await checker.run(plentyOfTime);

    expect(send).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(send.mock.calls[0]?.[0 as never]))).toEqual({
      requestId: 'req-b',
      action: 'create',
      groupId: item.groupId,
      cloudProvider: 'AWS',
      regionName: item.regionName,
      vpcRegionName: item.vpcRegionName,
      profile: 'default',
    });
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'STATUS_CHANGED',
        status: 'FAILED',
        errorMessage: expect.any(String),
      }),
    ]);
  });

  it('hands a FAILED key back with the last request of the requester it acts for: the oldest hold', async () => {
    const item = table.put({
      status: 'ACTIVE',
      requesters: { 'team-a': ['a-1'], 'team-b': ['b-1', 'b-2'] },
      holds: ['team-b', 'team-a'],
      lastRequester: 'team-a',
    });
    atlas.seedFor(item, 'FAILED');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send } });

    await checker.run(plentyOfTime);

    expect(JSON.parse(String(send.mock.calls[0]?.[0 as never]))).toMatchObject({ requestId: 'b-2' });
  });

  it('hands a FAILED key back for the lifecycle it read, so a delete that took effect since makes it stale', async () => {
    const lifecycle = {
      messageId: 'm-create',
      sentAt: 1,
      requestId: 'req-a',
      requester: 'default',
      action: 'create' as const,
    };
    const item = table.put({ status: 'ACTIVE', requesters: { default: ['req-a'] }, lifecycle });
    atlas.seedFor(item, 'FAILED');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send } });

    await checker.run(plentyOfTime);

    expect(send).toHaveBeenCalledWith(expect.any(String), { requester: 'default', lifecycle: 'm-create' });
  });

  it('records nothing when the hand-back cannot be sent, so the next run hands it back again', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'FAILED');
    const { checker } = buildChecker(atlas, {
      requests: { send: vi.fn(async () => Promise.reject(new Error('SQS is down'))) },
    });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ skipped: 1 });

    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE' });
    expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
  });

  it('leaves a key whose FAILED endpoint the provisioner is recreating to the provisioner', async () => {
    const item = table.put({ status: 'DELETING', recreating: true });
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(table.get(item.key)).toMatchObject({ status: 'DELETING', endpointId: item.endpointId });
    expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
  });

  it('deletes an extra endpoint that a create in doubt accounts for, and announces it once', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(30)] });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'INITIATING'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const { checker } = buildChecker(atlas);

    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ duplicatesDeleted: 1 });
    expect(atlas.deletes).toEqual([{ groupId: item.groupId, endpointId: extra.id }]);
    expect(table.get(item.key)).not.toHaveProperty('unconfirmedCreates');
    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'DUPLICATE_DELETED', endpointId: extra.id }),
    ]);
  });

  it('reports an extra endpoint nothing accounts for once, counts it every run, and never deletes it', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'ACTIVE'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const first = buildChecker(atlas);
    await first.checker.run(plentyOfTime);
    const second = buildChecker(atlas, { now: () => new Date(NOW.getTime() + 300_000) });
    await second.checker.run(plentyOfTime);

    expect(atlas.deletes).toEqual([]);
    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'DUPLICATE_FOUND', endpointId: extra.id }),
    ]);
    for (const run of [first, second]) {
      expect(run.metrics.addMetric).toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', 1);
    }
  });

  it('reports an endpoint that appeared for a create in doubt whose request stopped, for a replay to adopt', async () => {
    const item = table.put({ status: 'REQUESTED', pendingCreate: { sentAt: minutesAgo(90) } });
    const stored = table.get(item.key);
    if (stored) delete stored.endpointId;
    const landed = atlas.seedFor({ ...item, endpointId: 'a'.repeat(24) }, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);
    await buildChecker(atlas, { now: () => new Date(NOW.getTime() + 300_000) }).checker.run(plentyOfTime);

    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'UNCLAIMED', endpointId: landed.id }),
    ]);
    expect(table.get(item.key)).toMatchObject({
      status: 'REQUESTED',
      pendingCreate: { sentAt: minutesAgo(90) },
    });
    expect(table.get(item.key)).not.toHaveProperty('endpointId');
  });
});

describe('StatusChecker, extra endpoints for one key', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  /** The item's endpoint and `count` more for its key, as Atlas lists them. */
  const withExtras = (item: ReturnType<FakeTable['put']>, count: number, status = 'INITIATING') => {
    atlas.seedFor(item, 'ACTIVE');
    const extras = Array.from({ length: count }, (_, i) => ({
      ...atlas.seedFor(item, status),
      id: `f${i}`.padEnd(24, 'f'),
      ...(item.vpcRegionName !== undefined && { vpcRegionName: item.vpcRegionName }),
    }));
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), ...extras]);
    return extras;
  };

  it('deletes only as many extras as creates in doubt account for, forgetting the oldest of them', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50), minutesAgo(40)] });
    const [extra] = withExtras(item, 1);
    const { checker, metrics } = buildChecker(atlas);

    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ checked: 1, duplicatesDeleted: 1 });
    expect(atlas.deletes).toEqual([{ groupId: item.groupId, endpointId: extra?.id }]);
    expect(table.get(item.key)?.unconfirmedCreates).toEqual([minutesAgo(40)]);
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'DUPLICATE_DELETED',
        eventId: expect.stringMatching(/^[a-f0-9]{32}$/),
        naturalKey: item.key,
        endpointId: extra?.id,
        status: 'DELETING',
        occurredAt: NOW.toISOString(),
      }),
    ]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', expect.anything());
  });

  it('reports, never deletes, more extras than creates in doubt account for', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50)] });
    const extras = withExtras(item, 2);
    const { checker, metrics } = buildChecker(atlas);

    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ checked: 1, duplicatesDeleted: 0 });
    expect(atlas.deletes).toEqual([]);
    expect(table.get(item.key)).toMatchObject({
      unconfirmedCreates: [minutesAgo(50)],
      reported: extras.map((e) => e.id),
    });
    expect(publishedDetails().map((d) => [d.outcome, d.endpointId, d.status])).toEqual(
      extras.map((e) => ['DUPLICATE_FOUND', e.id, 'INITIATING']),
    );
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', 2);
  });

  it('deletes no extra while a provisioner holds the key: the provisioner resolves it itself', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50)] });
    const stored = table.get(item.key);
    if (stored) stored.lease = { owner: 'worker', expiresAt: NOW.getTime() };
    withExtras(item, 1);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 0, skipped: 1 });

    expect(atlas.deletes).toEqual([]);
    expect(table.get(item.key)?.unconfirmedCreates).toEqual([minutesAgo(50)]);
  });

  it('deletes the extras of a key whose lease ran out', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50)] });
    const stored = table.get(item.key);
    if (stored) stored.lease = { owner: 'crashed', expiresAt: NOW.getTime() - 1 };
    const [extra] = withExtras(item, 1);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 1 });
    expect(atlas.deletes).toEqual([{ groupId: item.groupId, endpointId: extra?.id }]);
  });

  it('counts an extra already gone (404) as deleted, and keeps one Atlas would not delete for the next run', async () => {
    const gone = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50)] });
    const kept = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(50)] });
    const [goneExtra] = withExtras(gone, 1);
    withExtras(kept, 1);
    const failing = {
      withClient: <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) =>
        atlas.profiles.withClient(profile, (client) =>
          fn({
            listEndpoints: client.listEndpoints,
            deleteEndpoint: async (groupId, provider, endpointId) => {
              if (groupId === gone.groupId)
                throw new AtlasApiError({
                  status: 404,
                  errorCode: 'RESOURCE_NOT_FOUND',
                  operation: 'delete',
                });
              if (groupId === kept.groupId) throw apiError(500, 'UNEXPECTED_ERROR');
              return client.deleteEndpoint(groupId, provider, endpointId);
            },
          }),
        ),
    };
    const { checker } = buildChecker(atlas, { atlas: failing });

    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ checked: 2, duplicatesDeleted: 1 });
    expect(table.get(gone.key)).not.toHaveProperty('unconfirmedCreates');
    expect(table.get(kept.key)?.unconfirmedCreates).toEqual([minutesAgo(50)]);
    expect(publishedDetails().map((d) => [d.outcome, d.endpointId])).toEqual([
      ['DUPLICATE_DELETED', goneExtra?.id],
    ]);
  });

  it('ignores endpoints Atlas is deleting: they are not extras', async () => {
    const item = table.put({ status: 'ACTIVE' });
    withExtras(item, 1, 'DELETING');
    const { checker, metrics } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 0 });

    expect(publishedDetails()).toEqual([]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', expect.anything());
  });

  it('remembers the last ten extras it reported, and reports each only once', async () => {
    const item = table.put({ status: 'ACTIVE', reported: ['r'.repeat(24)] });
    const extras = withExtras(item, 11);
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(table.get(item.key)?.reported).toEqual(extras.slice(1).map((e) => e.id));
    expect(publishedDetails()).toHaveLength(11);
  });

  it('adopts the one endpoint that took the place of a ledger endpoint that is gone, naming both ids', async () => {
    const item = table.put({ status: 'ACTIVE' });
    const successor = { ...atlas.seedFor(item, 'ACTIVE'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [successor]);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 1, missing: 0 });

    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE', endpointId: successor.id });
    expect(table.get(item.key)).not.toHaveProperty('reported');
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'ADOPTED',
        endpointId: successor.id,
        previousEndpointId: item.endpointId,
        status: 'ACTIVE',
      }),
    ]);
  });

  it('reports two endpoints beside a ledger endpoint that is gone, with the drift, for an operator', async () => {
    const item = table.put({ status: 'ACTIVE' });
    const extras = ['f', 'e'].map((c) => ({ ...atlas.seedFor(item, 'ACTIVE'), id: c.repeat(24) }));
    atlas.endpoints.set(item.groupId, extras);
    const { checker, metrics } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 1, missing: 1 });

    expect(table.get(item.key)).toMatchObject({ status: 'MISSING', reported: extras.map((e) => e.id) });
    expect(publishedDetails().map((d) => d.outcome)).toEqual([
      'MISSING',
      'DUPLICATE_FOUND',
      'DUPLICATE_FOUND',
    ]);
    expect(metrics.addMetric).toHaveBeenCalledWith('DuplicateEndpoints', 'Count', 2);
  });
});

describe('StatusChecker, creates in doubt', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  /** A key whose create is in doubt since `minutes` ago, and the endpoint that landed for it. */
  const inDoubt = (minutes: number) => {
    const item = table.put({ status: 'REQUESTED', pendingCreate: { sentAt: minutesAgo(minutes) } });
    const stored = table.get(item.key);
    if (stored) delete stored.endpointId;
    const landed = atlas.seedFor({ ...item, endpointId: 'a'.repeat(24) }, 'INITIATING');
    return { item, landed };
  };

  it('says nothing of an endpoint for a create in doubt while its request may still be running', async () => {
    const { item } = inDoubt(60);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 0 });

    expect(publishedDetails()).toEqual([]);
    expect(table.get(item.key)).not.toHaveProperty('reported');
  });

  it('reports the endpoint once the request is past the in-progress deadline, remembering it', async () => {
    const { item, landed } = inDoubt(61);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 0 });

    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'UNCLAIMED',
        naturalKey: item.key,
        endpointId: landed.id,
        status: 'INITIATING',
        occurredAt: NOW.toISOString(),
      }),
    ]);
    expect(table.get(item.key)).toMatchObject({ status: 'REQUESTED', reported: [landed.id] });
  });

  it('leaves a key with neither an endpoint nor a create in doubt to the provisioner', async () => {
    const item = table.put({ status: 'DELETING' });
    const stored = table.get(item.key);
    if (stored) delete stored.endpointId;
    atlas.seedFor({ ...item, endpointId: 'a'.repeat(24) }, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 0 });

    expect(table.get(item.key)).toMatchObject({ status: 'DELETING' });
    expect(publishedDetails()).toEqual([]);
  });
});

describe('StatusChecker, what it cannot read', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  it('leaves an item whose cloud provider this version does not know untouched, without asking Atlas', async () => {
    const item = table.put({ status: 'INITIATING', cloudProvider: 'ORACLE' });
    const before = structuredClone(table.get(item.key));
    const { checker, logger } = buildChecker(atlas);
    const logError = vi.spyOn(logger, 'error');

    const summary = await checker.run(plentyOfTime);

    expect(summary).toMatchObject({ checked: 0, skipped: 1, projects: 1 });
    expect(atlas.calls).toEqual([]);
    expect(table.get(item.key)).toEqual(before);
    expect(logError).toHaveBeenCalledWith(
      expect.stringContaining('cloud provider'),
      expect.objectContaining({ cloudProvider: 'ORACLE' }),
    );
  });

  it('does not call a status stuck when the time it started is unreadable', async () => {
    const item = table.put({ status: 'INITIATING', statusSince: 'not a date' });
    atlas.seedFor(item, 'INITIATING');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, stuck: 0 });
    expect(table.get(item.key)).not.toHaveProperty('stuckAt');
  });
});

describe('StatusChecker, run by run', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  it('stops reading the ledger where the items it recorded come round again', async () => {
    for (let i = 0; i < 5; i++) atlas.seedFor(table.put({ checkedAt: minutesAgo(10 - i) }), 'INITIATING');
    const pages = vi.spyOn(table.ledger, 'listTracked');
    const { checker } = buildChecker(atlas, { pageSize: 2 });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 5 });

    expect(pages).toHaveBeenCalledTimes(3);
  });

  it('leaves an item checked since the run started, by an overlapping run, to the next run', async () => {
    const item = table.put({ status: 'INITIATING', checkedAt: NOW.toISOString() });
    atlas.seedFor(item, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 0, changed: 0 });
    expect(table.get(item.key)).toMatchObject({ status: 'INITIATING' });
  });

  it('checks an item written at the very moment its project was listed', async () => {
    const item = table.put({ status: 'INITIATING', updatedAt: NOW.toISOString() });
    atlas.seedFor(item, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 1, skipped: 0 });
  });

  it('still starts with exactly the safety margin left', async () => {
    atlas.seedFor(table.put({ status: 'ACTIVE' }), 'ACTIVE');
    const { checker } = buildChecker(atlas, { safetyMarginMs: 10_000 });
    const remaining = vi.fn().mockReturnValueOnce(60_000).mockReturnValue(10_000);

    await expect(checker.run({ remainingMs: remaining })).resolves.toMatchObject({
      checked: 1,
      stoppedEarly: false,
    });
  });

  it('records a change of an item whose outbox still holds an earlier event, and announces both', async () => {
    const item = table.put({ status: 'INITIATING' });
    const earlier = { ...publishedDetailsOf(item), eventId: 'b'.repeat(32) };
    const stored = table.get(item.key);
    if (stored) stored.outbox = { [earlier.eventId]: earlier };
    atlas.seedFor(item, 'ACTIVE');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1, changed: 1 });

    expect(table.get(item.key)).toMatchObject({ status: 'ACTIVE' });
    expect(table.get(item.key)).not.toHaveProperty('outbox');
    expect(publishedDetails().map((d) => d.eventId)).toEqual([earlier.eventId, expect.any(String)]);
  });

  it('counts drift once: a MISSING item revisited only for its outbox is not missing again', async () => {
    const item = table.put({ status: 'ACTIVE' });
    eventBridge
      .on(PutEventsCommand)
      .rejectsOnce(new Error('EventBridge is down'))
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-2' }] });
    await buildChecker(atlas).checker.run(plentyOfTime);
    expect(table.get(item.key)).toMatchObject({ status: 'MISSING' });

    const next = await buildChecker(atlas, { now: () => new Date(NOW.getTime() + 60_000) }).checker.run(
      plentyOfTime,
    );

    expect(next).toMatchObject({ changed: 0, missing: 0 });
    expect(table.get(item.key)).not.toHaveProperty('outbox');
  });

  it('announces nothing for an item whose check it could not record', async () => {
    const item = table.put({ status: 'INITIATING' });
    atlas.seedFor(item, 'ACTIVE');
    vi.spyOn(table.ledger, 'recordCheck').mockRejectedValue(new Error('ThrottlingException'));
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 0, skipped: 1 });
    expect(eventBridge).not.toHaveReceivedCommand(PutEventsCommand);
  });

  it('hands back only a create whose endpoint FAILED', async () => {
    const activated = table.put({ status: 'INITIATING' });
    const deleteFailed = table.put({ status: 'DELETING', action: 'delete' });
    atlas.seedFor(activated, 'ACTIVE');
    atlas.seedFor(deleteFailed, 'FAILED');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send } });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 2 });
    expect(send).not.toHaveBeenCalled();
    expect(table.get(deleteFailed.key)).toMatchObject({ status: 'FAILED' });
  });

  it("announces a stuck endpoint with Atlas's errorMessage, under the eventId of that fact", async () => {
    const item = table.put({ status: 'PENDING_ACCEPTANCE', statusSince: minutesAgo(2_000) });
    atlas.seedFor(item, 'PENDING_ACCEPTANCE', 'accept the endpoint in your VPC');
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'STUCK',
        eventId: requesterEventId(
          eventIdOf('STUCK', item.key, item.endpointId, 'PENDING_ACCEPTANCE', item.statusSince),
          'default',
        ),
        errorMessage: 'accept the endpoint in your VPC',
      }),
    ]);
  });

  it('announces a deleted extra under the eventId of that fact', async () => {
    const item = table.put({ status: 'ACTIVE', unconfirmedCreates: [minutesAgo(30)] });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'INITIATING'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const { checker } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(publishedDetails().map((d) => d.eventId)).toEqual([
      requesterEventId(eventIdOf('DUPLICATE_DELETED', item.key, extra.id), 'default'),
    ]);
  });
});

/** A status event about `item`, as an earlier run would have recorded it. */
function publishedDetailsOf(item: { key: string; groupId: string; regionName: string; endpointId?: string }) {
  return {
    version: '1' as const,
    eventId: 'a'.repeat(32),
    outcome: 'STATUS_CHANGED' as const,
    requester: 'default',
    requestIds: ['req-0'],
    naturalKey: item.key,
    groupId: item.groupId,
    cloudProvider: 'AWS' as const,
    regionName: item.regionName,
    action: 'create' as const,
    ...(item.endpointId !== undefined && { endpointId: item.endpointId }),
    status: 'INITIATING',
    occurredAt: minutesAgo(5),
  };
}

describe('StatusChecker, an endpoint Atlas recreates under a new id', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  /** The follow-ups the checker started: their endpoint, number and delay. */
  const followUpsOf = (send: ReturnType<typeof vi.fn>) =>
    send.mock.calls
      .map(
        ([, options]) =>
          options as { delaySeconds?: number; followUp?: { number: number; endpointId: string } },
      )
      .filter((options) => options?.followUp !== undefined);

  it('announces PENDING_RECREATION and starts the follow-ups that watch the key closely', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'PENDING_RECREATION');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send }, followUpFirstSeconds: 7 });

    await checker.run(plentyOfTime);

    expect(table.get(item.key)?.status).toBe('PENDING_RECREATION');
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'STATUS_CHANGED',
        status: 'PENDING_RECREATION',
        previousStatus: 'ACTIVE',
      }),
    ]);
    // The key's one live chain: the ledger records the chain its follow-ups carry.
    const chain = table.get(item.key)?.followChain;
    expect(chain).toEqual(expect.any(String));
    expect(followUpsOf(send)).toEqual([
      {
        requester: 'default',
        delaySeconds: 7,
        followUp: { number: 1, endpointId: item.endpointId, chain },
      },
    ]);
    expect(JSON.parse(String(send.mock.calls[0]?.[0 as never]))).toMatchObject({
      action: 'create',
      groupId: item.groupId,
      regionName: item.regionName,
    });
  });

  it('starts no follow-up without follow-ups configured, and none for a status that is not a recreation', async () => {
    const recreating = table.put({ status: 'ACTIVE' });
    atlas.seedFor(recreating, 'PENDING_RECREATION');
    const send = vi.fn(async () => undefined);
    await buildChecker(atlas, { requests: { send } }).checker.run(plentyOfTime);
    expect(followUpsOf(send)).toEqual([]);

    table = resetAws();
    atlas = new FakeAtlas();
    const initiating = table.put({ status: 'PENDING_ACCEPTANCE' });
    atlas.seedFor(initiating, 'INITIATING');
    await buildChecker(atlas, { requests: { send }, followUpFirstSeconds: 7 }).checker.run(plentyOfTime);
    expect(followUpsOf(send)).toEqual([]);
  });

  it('records the new endpoint in place of the recreated one: one RECREATED event, no MISSING, no duplicate', async () => {
    const item = table.put({ status: 'PENDING_RECREATION' });
    const successor = { ...atlas.seedFor(item, 'INITIATING'), id: 'c'.repeat(24) };
    atlas.endpoints.set(item.groupId, [successor]);
    const send = vi.fn(async () => undefined);
    const { checker, metrics } = buildChecker(atlas, { requests: { send }, followUpFirstSeconds: 7 });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 1, missing: 0 });

    expect(table.get(item.key)).toMatchObject({ endpointId: successor.id, status: 'INITIATING' });
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'RECREATED',
        endpointId: successor.id,
        previousEndpointId: item.endpointId,
        previousStatus: 'PENDING_RECREATION',
        status: 'INITIATING',
        requestIds: item.requesters.default,
      }),
    ]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith('DuplicateEndpoints', 'Count', expect.anything());
    expect(followUpsOf(send)).toEqual([
      {
        requester: 'default',
        delaySeconds: 7,
        followUp: { number: 1, endpointId: successor.id, chain: table.get(item.key)?.followChain },
      },
    ]);
  });

  it('waits for the successor of a recreation, and reports the key STUCK past the in-progress deadline', async () => {
    const item = table.put({ status: 'PENDING_RECREATION', statusSince: minutesAgo(30) });
    atlas.endpoints.set(item.groupId, []);
    await buildChecker(atlas).checker.run(plentyOfTime);
    expect(publishedDetails()).toEqual([]);
    expect(table.get(item.key)).toMatchObject({ status: 'PENDING_RECREATION', endpointId: item.endpointId });

    table.put({ ...item, statusSince: minutesAgo(90), checkedAt: minutesAgo(5) });
    await buildChecker(atlas).checker.run(plentyOfTime);
    expect(publishedDetails().map((d) => d.outcome)).toEqual(['STUCK']);
  });

  it('hands a successor that FAILED back to the provisioner, as any FAILED endpoint', async () => {
    const item = table.put({ status: 'PENDING_RECREATION' });
    const successor = { ...atlas.seedFor(item, 'FAILED', 'quota exceeded'), id: 'c'.repeat(24) };
    atlas.endpoints.set(item.groupId, [successor]);
    const send = vi.fn(async () => undefined);
    await buildChecker(atlas, { requests: { send }, followUpFirstSeconds: 7 }).checker.run(plentyOfTime);

    expect(send).toHaveBeenCalledTimes(1);
    expect(followUpsOf(send)).toEqual([]);
    expect(table.get(item.key)).toMatchObject({ endpointId: successor.id, status: 'FAILED' });
    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'RECREATED', status: 'FAILED', errorMessage: 'quota exceeded' }),
    ]);
  });
});
