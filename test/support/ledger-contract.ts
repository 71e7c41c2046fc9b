/**
 * The ledger's contract as one table of cases, run against the real Ledger on DynamoDB (moto, in
 * test/functions/lib/ledger/ledger.moto.test.ts) and against the in-memory stand-in the domains' unit
 * tests use (test/support/in-memory-ledger.test.ts): the stand-in is only as good as this proof.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { StatusChangedDetail } from '#events/status-event.ts';
import {
  boundProfile,
  type LedgerStatus,
  MAX_OUTBOX,
  MAX_REQUEST_IDS,
  NEVER_CHECKED,
  type SettleResult,
} from '#ledger/ledger.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import type { LedgerApi } from './in-memory-ledger.ts';

export const START = Date.parse('2026-11-29T10:00:00.000Z');
const LEASE_SECONDS = 60;
/** A write refused because its condition (the lease, the expected status) does not hold. */
const CONDITION_FAILED = {
  name: 'ConditionalCheckFailedException',
  message: expect.stringMatching(/^The conditional request failed/),
};

const at = (ms: number) => new Date(ms).toISOString();
const failure = (code: string) => ({
  disposition: 'retry' as const,
  code,
  httpStatus: 503,
  detail: `${code} detail`,
});

let groups = 0;
const request = (overrides: Partial<ProvisionRequest> = {}): ProvisionRequest => {
  groups += 1;
  return {
    requestId: `req-${groups}`,
    action: 'create',
    groupId: groups.toString(16).padStart(24, 'a'),
    cloudProvider: 'AWS',
    regionName: 'US_EAST_1',
    profile: 'default',
    ...overrides,
  };
};

/**
 * Defines the contract's cases in the current describe block. `make` builds an empty ledger
 * reading the given clock, once per case; `putRaw` stores an item as written to the table (an
 * item of an earlier version), in the ledger `make` built last.
 */
export function ledgerContract(
  make: (now: () => Date) => Promise<LedgerApi>,
  putRaw: (item: Record<string, unknown>) => Promise<void>,
): void {
  let clock: number;
  let ledger: LedgerApi;

  /** What the provisioner records when it answers `r`: the status since now. */
  const answer = (
    r: ProvisionRequest,
    status: LedgerStatus,
    extra: Partial<SettleResult> = {},
  ): SettleResult => ({ status, request: r, statusSince: at(clock), ...extra });

  const event = (eventId: string): StatusChangedDetail => ({
    version: '1',
    eventId,
    outcome: 'PROVISIONED',
    requester: 'default',
    requestIds: ['req'],
    occurredAt: at(clock),
  });

  beforeEach(async () => {
    clock = START;
    ledger = await make(() => new Date(clock));
  });

  it('creates the item on the first claim, REQUESTED and leased to its owner', async () => {
    const r = request({ vpcRegionName: 'US_WEST_2' });

    const item = await ledger.claim(r, 'owner-a', LEASE_SECONDS);

    expect(item).toMatchObject({
      key: naturalKey(r),
      groupId: r.groupId,
      vpcRegionName: 'US_WEST_2',
      action: 'create',
      status: 'REQUESTED',
      requesters: {},
      createdAt: at(START),
      statusSince: at(START),
      checkedAt: NEVER_CHECKED,
      lease: { owner: 'owner-a', expiresAt: START + LEASE_SECONDS * 1000 },
    });
    expect(await ledger.get(naturalKey(r))).toEqual(item);
  });

  it('refuses a second owner while the lease lasts, lets its owner claim again, and anyone once it expired', async () => {
    const r = request();
    await ledger.claim(r, 'owner-a', LEASE_SECONDS);

    clock = START + 10_000;
    await expect(ledger.claim({ ...r, requestId: 'other' }, 'owner-b', LEASE_SECONDS)).rejects.toMatchObject({
      name: 'KeyBusyError',
      // The refused owner learns how long the lease has left, and waits that long.
      retryAfterSeconds: LEASE_SECONDS - 10,
    });
    clock = START;
    await expect(ledger.claim(r, 'owner-a', LEASE_SECONDS)).resolves.toMatchObject({
      lease: { owner: 'owner-a' },
    });

    clock = START + LEASE_SECONDS * 1000 + 1;
    const taken = await ledger.claim(
      { ...r, requestId: 'other', action: 'delete' },
      'owner-b',
      LEASE_SECONDS,
    );
    // What a request asks for is recorded when it is answered, not when it is claimed.
    expect(taken).toMatchObject({ lease: { owner: 'owner-b' }, action: 'create', requesters: {} });
  });

  it('keeps each requestId once, however often it is redelivered', async () => {
    const r = request();
    await ledger.settle(await ledger.claim(r, 'a', LEASE_SECONDS), 'a', answer(r, 'REQUESTED'));
    await ledger.settle(await ledger.claim(r, 'b', LEASE_SECONDS), 'b', answer(r, 'REQUESTED'));

    const again = await ledger.claim(r, 'c', LEASE_SECONDS);

    expect(again.requesters).toEqual({ default: [r.requestId] });
  });

  it('remembers per requester the latest-sent request applied, never moved back, and the lifecycle marker when given', async () => {
    const r = request();
    const marker = {
      messageId: 'm-2',
      sentAt: 2_000,
      requestId: 'del-2',
      requester: 'team-a',
      action: 'delete' as const,
    };
    const del = { ...r, action: 'delete' as const, requestId: 'del-2', requester: 'team-a', sentAt: 2_000 };
    await ledger.settle(await ledger.claim(r, 'a', LEASE_SECONDS), 'a', {
      ...answer(del, 'DELETED'),
      lifecycle: marker,
    });
    // An older request of team-a settled later (a wait of it) leaves team-a's entry; team-b gets its own.
    const older = { ...r, requestId: 'old-1', requester: 'team-a', sentAt: 1_000 };
    await ledger.settle(await ledger.claim(r, 'b', LEASE_SECONDS), 'b', answer(older, 'REQUESTED'));
    const other = { ...r, requestId: 'b-1', requester: 'team-b', sentAt: 1_500 };
    const settled = await ledger.settle(
      await ledger.claim(r, 'c', LEASE_SECONDS),
      'c',
      answer(other, 'REQUESTED'),
    );

    const applied = {
      'team-a': { sentAt: 2_000, requestId: 'del-2', action: 'delete' },
      'team-b': { sentAt: 1_500, requestId: 'b-1', action: 'create' },
    };
    expect(settled).toMatchObject({ applied, lifecycle: marker });
    expect(await ledger.get(naturalKey(r))).toMatchObject({ applied, lifecycle: marker });
    // A request without a send time (a hand-back) writes neither.
    const plain = await ledger.settle(await ledger.claim(r, 'd', LEASE_SECONDS), 'd', answer(r, 'REQUESTED'));
    expect(plain).toMatchObject({ applied, lifecycle: marker });
  });

  it('keeps the most recent requestIds of the current lifecycle only, so a busy key never grows', async () => {
    const r = request();
    for (let i = 0; i < MAX_REQUEST_IDS + 5; i++) {
      const ask = { ...r, requestId: `ask-${i}` };
      await ledger.settle(
        await ledger.claim(ask, `o${i}`, LEASE_SECONDS),
        `o${i}`,
        answer(ask, 'ACTIVE', { endpointId: 'e'.repeat(24) }),
      );
    }
    const kept = (await ledger.get(naturalKey(r)))?.requesters.default ?? [];
    expect(kept).toHaveLength(MAX_REQUEST_IDS);
    expect(kept.at(-1)).toBe(`ask-${MAX_REQUEST_IDS + 4}`);
    expect(kept[0]).toBe('ask-5');

    // A delete starts a new lifecycle: the create's requests are no longer the ones answered.
    const del = { ...r, requestId: 'retire', action: 'delete' as const };
    const settled = await ledger.settle(
      await ledger.claim(del, 'd', LEASE_SECONDS),
      'd',
      answer(del, 'DELETING', { endpointId: 'e'.repeat(24) }),
    );
    expect(settled.requesters).toEqual({ default: ['retire'] });
  });

  it('writes a create down while the lease is held, and keeps it in doubt until a settle or an answered failure', async () => {
    const r = request();
    const key = naturalKey(r);
    await ledger.claim(r, 'a', LEASE_SECONDS);

    const amended = await ledger.amend(key, 'a', {
      pendingCreate: { sentAt: at(clock) },
      unconfirmedCreates: [at(START - 1)],
    });
    await expect(ledger.amend(key, 'other', { pendingCreate: { sentAt: at(clock) } })).rejects.toMatchObject(
      CONDITION_FAILED,
    );
    // A timeout is not an answer: the create stays in doubt past the failure.
    await ledger.recordFailure(key, 'a', failure('ATLAS_TIMEOUT'));
    const doubtful = await ledger.claim(r, 'b', LEASE_SECONDS);
    await ledger.recordFailure(key, 'b', failure('RATE_LIMITED'), { resolvedCreate: true });
    const answered = await ledger.get(key);

    expect(amended).toMatchObject({
      pendingCreate: { sentAt: at(clock) },
      unconfirmedCreates: [at(START - 1)],
      tracked: 'OPEN',
    });
    expect(doubtful.pendingCreate).toEqual({ sentAt: at(clock) });
    expect(answered).not.toHaveProperty('pendingCreate');
    expect(answered).toMatchObject({ unconfirmedCreates: [at(START - 1)] });
  });

  it('keeps events in the outbox with the state they announce, adds to it, and clears what was sent', async () => {
    const r = request();
    const key = naturalKey(r);
    const one = await ledger.settle(
      await ledger.claim(r, 'a', LEASE_SECONDS),
      'a',
      answer(r, 'DELETED', { events: [event('a'.repeat(32))] }),
    );
    // Events to announce put a key with no endpoint in the check index.
    expect(one.tracked).toBe('OPEN');
    const both = await ledger.settle(
      await ledger.claim(r, 'b', LEASE_SECONDS),
      'b',
      answer(r, 'DELETED', { events: [event('b'.repeat(32))] }),
    );

    expect(Object.keys(both.outbox ?? {}).sort()).toEqual(['a'.repeat(32), 'b'.repeat(32)]);
    // Events to announce keep the item in the check index, whatever its status.
    expect(both.tracked).toBe('OPEN');

    await ledger.clearOutbox(key, ['a'.repeat(32)]);
    expect(Object.keys((await ledger.get(key))?.outbox ?? {})).toEqual(['b'.repeat(32)]);
    await ledger.clearOutbox(key, ['b'.repeat(32)]);
    const cleared = await ledger.get(key);
    expect(cleared).not.toHaveProperty('outbox');
    expect(cleared).not.toHaveProperty('tracked');
  });

  it('records a check with its events, and refuses to replace an outbox it did not read', async () => {
    const r = request();
    const key = naturalKey(r);
    await ledger.settle(
      await ledger.claim(r, 'a', LEASE_SECONDS),
      'a',
      answer(r, 'INITIATING', { endpointId: 'e'.repeat(24) }),
    );
    clock += 1_000;

    const checked = await ledger.recordCheck(key, 'INITIATING', {
      status: 'ACTIVE',
      statusSince: at(clock),
      events: [event('c'.repeat(32))],
    });
    const refused = await ledger.recordCheck(key, 'ACTIVE', {
      status: 'FAILED',
      events: [event('d'.repeat(32))],
    });
    const added = await ledger.recordCheck(
      key,
      'ACTIVE',
      { status: 'FAILED', events: [event('d'.repeat(32))] },
      checked?.outbox,
    );

    expect(checked).toMatchObject({ status: 'ACTIVE', statusSince: at(clock) });
    expect(Object.keys(checked?.outbox ?? {})).toEqual(['c'.repeat(32)]);
    expect(refused).toBeUndefined();
    expect(Object.keys(added?.outbox ?? {}).sort()).toEqual(['c'.repeat(32), 'd'.repeat(32)]);
  });

  it('settles: records the status and endpoint, releases the lease, tracks the endpoint and restarts the status clock', async () => {
    const r = request();
    const claimed = await ledger.claim(r, 'owner-a', LEASE_SECONDS);
    clock += 5_000;

    const settled = await ledger.settle(
      claimed,
      'owner-a',
      answer(r, 'INITIATING', { endpointId: 'e'.repeat(24) }),
    );

    expect(settled).toMatchObject({
      status: 'INITIATING',
      endpointId: 'e'.repeat(24),
      tracked: 'OPEN',
      statusSince: at(clock),
    });
    expect(settled).not.toHaveProperty('lease');
    await expect(ledger.claim(r, 'owner-b', LEASE_SECONDS)).resolves.toMatchObject({ status: 'INITIATING' });
  });

  it('refuses to settle for an owner that lost the lease', async () => {
    const r = request();
    const claimed = await ledger.claim(r, 'owner-a', LEASE_SECONDS);
    clock += LEASE_SECONDS * 1000 + 1;
    await ledger.claim(r, 'owner-b', LEASE_SECONDS);

    await expect(
      ledger.settle(claimed, 'owner-a', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) })),
    ).rejects.toMatchObject(CONDITION_FAILED);
  });

  it('records failures, keeping the first failure time, releases the lease, and a settle clears them', async () => {
    const r = request();
    await ledger.claim(r, 'a', LEASE_SECONDS);
    const first = await ledger.recordFailure(naturalKey(r), 'a', failure('RATE_LIMITED'));
    clock += 60_000;
    await ledger.claim(r, 'b', LEASE_SECONDS);

    const second = await ledger.recordFailure(naturalKey(r), 'b', failure('SERVICE_UNAVAILABLE'));

    expect(first).not.toHaveProperty('lease');
    expect(second).toMatchObject({
      firstFailureAt: at(START),
      lastError: {
        code: 'SERVICE_UNAVAILABLE',
        httpStatus: 503,
        detail: 'SERVICE_UNAVAILABLE detail',
        at: at(clock),
      },
    });
    const claimed = await ledger.claim(r, 'c', LEASE_SECONDS);
    const settled = await ledger.settle(claimed, 'c', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
    expect(settled).not.toHaveProperty('lastError');
    expect(settled).not.toHaveProperty('firstFailureAt');
  });

  it('refuses to record a failure for an owner without the lease', async () => {
    const r = request();
    await ledger.claim(r, 'a', LEASE_SECONDS);

    await expect(ledger.recordFailure(naturalKey(r), 'b', failure('X'))).rejects.toMatchObject(
      CONDITION_FAILED,
    );
  });

  it('lists only followed endpoints, least recently checked first, a page at a time', async () => {
    const keys: string[] = [];
    for (const status of ['ACTIVE', 'DELETED', 'PENDING_ACCEPTANCE', 'FAILED', 'DELETING']) {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.settle(claimed, 'a', answer(r, status, { endpointId: 'e'.repeat(24) }));
      keys.push(naturalKey(r));
    }
    const [active, , pending, failed, deleting] = keys as [string, string, string, string, string];
    clock += 1_000;
    await ledger.recordCheck(pending, 'PENDING_ACCEPTANCE', { status: 'PENDING_ACCEPTANCE' });
    clock += 1_000;
    await ledger.recordCheck(active, 'ACTIVE', { status: 'ACTIVE' });

    const first = await ledger.listTracked({ limit: 2 });
    const rest = await ledger.listTracked({ limit: 2, startKey: first.nextKey });

    const listed = [...first.items, ...rest.items].map((i) => i.key);
    // FAILED stays followed: its key goes back to the provisioner. Never-checked items come first.
    expect(listed.slice(0, 2).sort()).toEqual([failed, deleting].sort());
    expect(listed.slice(2)).toEqual([pending, active]);
  });

  describe('recordCheck', () => {
    const settledAs = async (status: string) => {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.settle(claimed, 'a', answer(r, status, { endpointId: 'e'.repeat(24) }));
      return naturalKey(r);
    };

    it('records a new status, restarting its clock, and stops following a deleted endpoint', async () => {
      const key = await settledAs('DELETING');
      clock += 10_000;

      const item = await ledger.recordCheck(key, 'DELETING', { status: 'DELETED' });

      expect(item).toMatchObject({ status: 'DELETED', statusSince: at(clock), checkedAt: at(clock) });
      expect(item).not.toHaveProperty('tracked');
      expect(item).not.toHaveProperty('endpointId');
    });

    it('marks an endpoint stuck once and keeps the first time', async () => {
      const key = await settledAs('PENDING_ACCEPTANCE');
      clock += 10_000;
      await ledger.recordCheck(key, 'PENDING_ACCEPTANCE', { status: 'PENDING_ACCEPTANCE', stuck: true });
      const stuckAt = at(clock);
      clock += 10_000;

      const item = await ledger.recordCheck(key, 'PENDING_ACCEPTANCE', {
        status: 'PENDING_ACCEPTANCE',
        stuck: true,
      });

      expect(item).toMatchObject({ stuckAt, checkedAt: at(clock), tracked: 'OPEN' });
    });

    it('does nothing when the status moved on since it was read', async () => {
      const key = await settledAs('INITIATING');

      await expect(
        ledger.recordCheck(key, 'PENDING_ACCEPTANCE', { status: 'ACTIVE' }),
      ).resolves.toBeUndefined();
      expect(await ledger.get(key)).toMatchObject({ status: 'INITIATING', checkedAt: NEVER_CHECKED });
    });

    it('does nothing while a provisioner holds the key, and applies once the lease expired', async () => {
      const r = request();
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'INITIATING', { endpointId: 'e'.repeat(24) }),
      );
      await ledger.claim(r, 'b', LEASE_SECONDS);

      await expect(
        ledger.recordCheck(naturalKey(r), 'INITIATING', { status: 'ACTIVE' }),
      ).resolves.toBeUndefined();

      clock += LEASE_SECONDS * 1000 + 1;
      await expect(
        ledger.recordCheck(naturalKey(r), 'INITIATING', { status: 'ACTIVE' }),
      ).resolves.toMatchObject({
        status: 'ACTIVE',
      });
    });

    it('does nothing for a key the ledger does not hold', async () => {
      await expect(
        ledger.recordCheck('no-such-key', 'ACTIVE', { status: 'ACTIVE' }),
      ).resolves.toBeUndefined();
    });
  });

  describe('confirmUnchanged', () => {
    const settled = async () => {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      const item = await ledger.settle(claimed, 'a', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      return { r, item };
    };

    it('confirms an item nobody wrote since it was read, marking it written so a check on the old read no longer applies', async () => {
      const { r, item } = await settled();
      clock += 10_000;

      await expect(ledger.confirmUnchanged(naturalKey(r), item.updatedAt)).resolves.toBe(at(clock));

      expect(await ledger.get(naturalKey(r))).toMatchObject({ updatedAt: at(clock), status: 'ACTIVE' });
      await expect(
        ledger.recordCheck(naturalKey(r), 'ACTIVE', { status: 'ACTIVE' }, undefined, item.updatedAt),
      ).resolves.toBeUndefined();
      await expect(
        ledger.recordCheck(naturalKey(r), 'ACTIVE', { status: 'ACTIVE' }, undefined, at(clock)),
      ).resolves.toMatchObject({ status: 'ACTIVE' });
    });

    it('refuses an item a provisioner wrote since it was read, and changes nothing', async () => {
      const { r, item } = await settled();
      clock += 10_000;
      const again = await ledger.claim(r, 'b', LEASE_SECONDS);
      await ledger.release(naturalKey(r), 'b');
      clock += 10_000;

      await expect(ledger.confirmUnchanged(naturalKey(r), item.updatedAt)).resolves.toBeUndefined();
      expect((await ledger.get(naturalKey(r)))?.updatedAt).not.toBe(item.updatedAt);
      expect((await ledger.get(naturalKey(r)))?.updatedAt).not.toBe(at(clock));
      expect(again.updatedAt).not.toBe(item.updatedAt);
    });

    it('refuses while a provisioner holds the key, and confirms once its lease expired', async () => {
      const { r } = await settled();
      const held = await ledger.claim(r, 'b', LEASE_SECONDS);

      await expect(ledger.confirmUnchanged(naturalKey(r), held.updatedAt)).resolves.toBeUndefined();

      clock += LEASE_SECONDS * 1000 + 1;
      await expect(ledger.confirmUnchanged(naturalKey(r), held.updatedAt)).resolves.toBe(at(clock));
    });

    it('refuses a key the ledger does not hold', async () => {
      await expect(ledger.confirmUnchanged('no-such-key', at(clock))).resolves.toBeUndefined();
    });
  });

  describe('claim', () => {
    it('records the key without a VPC region when none is given, and a later claim keeps what was answered, profile included', async () => {
      const r = request();
      const first = await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.settle(first, 'a', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      clock += 5_000;

      const again = await ledger.claim({ ...r, requestId: 'again', profile: 'team_b' }, 'b', LEASE_SECONDS);

      expect(first).not.toHaveProperty('vpcRegionName');
      expect(again).toMatchObject({
        status: 'ACTIVE',
        statusSince: at(START),
        createdAt: at(START),
        checkedAt: NEVER_CHECKED,
        endpointId: 'e'.repeat(24),
        requesters: { default: [r.requestId] },
        // A claim never repoints the key: its endpoint was made with the first profile.
        profile: r.profile,
        updatedAt: at(clock),
        lease: { owner: 'b', expiresAt: clock + LEASE_SECONDS * 1000 },
      });
    });

    it('binds the key to the profile of the request that leaves it an endpoint, and of a create sent', async () => {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.settle(claimed, 'a', answer(r, 'DELETED'));
      const gone = await ledger.claim({ ...r, requestId: 'ops-1', profile: 'team_b' }, 'b', LEASE_SECONDS);
      expect(gone.profile).toBe(r.profile);

      const sent = await ledger.amend(gone.key, 'b', {
        pendingCreate: { sentAt: at(clock) },
        profile: 'team_b',
      });
      expect(sent.profile).toBe('team_b');
      const bound = await ledger.settle(sent, 'b', {
        ...answer({ ...r, requestId: 'ops-1', profile: 'team_b' }, 'INITIATING', {
          endpointId: 'e'.repeat(24),
        }),
      });
      expect(bound).toMatchObject({ profile: 'team_b', endpointId: 'e'.repeat(24) });
    });

    it('holds the lease up to and including its last millisecond, telling the refused owner to wait at least 1 s', async () => {
      const r = request();
      await ledger.claim(r, 'a', LEASE_SECONDS);

      clock = START + 10_500;
      await expect(ledger.claim(r, 'b', LEASE_SECONDS)).rejects.toMatchObject({
        name: 'KeyBusyError',
        key: naturalKey(r),
        retryAfterSeconds: 50,
      });
      clock = START + LEASE_SECONDS * 1000;
      await expect(ledger.claim(r, 'b', LEASE_SECONDS)).rejects.toMatchObject({ retryAfterSeconds: 1 });
      clock += 1;
      await expect(ledger.claim(r, 'b', LEASE_SECONDS)).resolves.toMatchObject({ lease: { owner: 'b' } });
    });

    it('hands out copies: changing an item read changes nothing stored', async () => {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      claimed.status = 'ACTIVE';
      claimed.requesters.forged = ['forged'];
      const read = await ledger.get(naturalKey(r));
      if (read) read.status = 'FAILED';

      expect(await ledger.get(naturalKey(r))).toMatchObject({ status: 'REQUESTED', requesters: {} });
      expect((await ledger.get(naturalKey(r)))?.requesters).toEqual({});
    });

    it('reads nothing for a key it does not hold', async () => {
      expect(await ledger.get('no-such-key')).toBeUndefined();
    });
  });

  describe('amend and release', () => {
    it('writes fields under the lease and removes those given as undefined; only a create in doubt is followed', async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.claim(r, 'a', LEASE_SECONDS);
      clock += 1_000;

      const counted = await ledger.amend(key, 'a', { endpointFailures: 1, recreating: true });
      const cleared = await ledger.amend(key, 'a', { recreating: undefined });

      expect(counted).toMatchObject({ endpointFailures: 1, recreating: true, updatedAt: at(clock) });
      expect(counted).not.toHaveProperty('tracked');
      expect(cleared).toMatchObject({ endpointFailures: 1, lease: { owner: 'a' } });
      expect(cleared).not.toHaveProperty('recreating');
      const both = await ledger.amend(key, 'a', {
        pendingCreate: { sentAt: at(clock) },
        endpointFailures: undefined,
        unconfirmedCreates: undefined,
      });
      const none = await ledger.amend(key, 'a', { pendingCreate: undefined, recreating: undefined });
      expect(both).toMatchObject({ pendingCreate: { sentAt: at(clock) }, tracked: 'OPEN' });
      expect(both).not.toHaveProperty('endpointFailures');
      expect(none).not.toHaveProperty('pendingCreate');
    });

    it('refuses a write under a lease to a key released or never claimed', async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.release(key, 'a');

      await expect(ledger.amend(key, 'a', { endpointFailures: 1 })).rejects.toMatchObject(CONDITION_FAILED);
      await expect(ledger.recordFailure('no-such-key', 'a', failure('X'))).rejects.toMatchObject(
        CONDITION_FAILED,
      );
    });

    it('releases the lease so the next owner claims at once, and refuses a release by another owner', async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.claim(r, 'a', LEASE_SECONDS);

      await expect(ledger.release(key, 'b')).rejects.toMatchObject(CONDITION_FAILED);
      clock += 1_000;
      await ledger.release(key, 'a');
      const released = await ledger.get(key);

      expect(released).not.toHaveProperty('lease');
      expect(released).toMatchObject({ status: 'REQUESTED', updatedAt: at(clock) });
      await expect(ledger.claim(r, 'b', LEASE_SECONDS)).resolves.toMatchObject({ lease: { owner: 'b' } });
    });
  });

  describe('settle', () => {
    const settleAgain = async (r: ProvisionRequest, owner: string, result: SettleResult) =>
      ledger.settle(await ledger.claim(r, owner, LEASE_SECONDS), owner, result);

    it('keeps the stuck mark while the status stays, and drops it when the status changes', async () => {
      const r = request();
      const key = naturalKey(r);
      await settleAgain(r, 'a', answer(r, 'PENDING_ACCEPTANCE', { endpointId: 'e'.repeat(24) }));
      await ledger.recordCheck(key, 'PENDING_ACCEPTANCE', { status: 'PENDING_ACCEPTANCE', stuck: true });

      const same = await settleAgain(r, 'b', answer(r, 'PENDING_ACCEPTANCE', { endpointId: 'e'.repeat(24) }));
      const moved = await settleAgain(r, 'c', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));

      expect(same.stuckAt).toBe(at(START));
      expect(moved).not.toHaveProperty('stuckAt');
    });

    it('forgets the endpoint of a key gone DELETED and stops following it, but keeps it for a status that has one', async () => {
      const r = request();
      await settleAgain(r, 'a', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));

      const pending = await settleAgain(r, 'b', answer(r, 'PENDING_ACCEPTANCE'));
      const del = { ...r, requestId: 'del', action: 'delete' as const };
      const deleted = await settleAgain(del, 'c', answer(del, 'DELETED'));

      expect(pending).toMatchObject({ status: 'PENDING_ACCEPTANCE', endpointId: 'e'.repeat(24) });
      expect(deleted).toMatchObject({
        status: 'DELETED',
        action: 'delete',
        requesters: { default: ['del'] },
      });
      expect(deleted).not.toHaveProperty('endpointId');
      expect(deleted).not.toHaveProperty('tracked');
    });

    it("records Atlas' error message while it lasts, and the lease bookkeeping it is given", async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.amend(key, 'a', { pendingCreate: { sentAt: at(clock) } });
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);

      const failed = await ledger.settle(
        claimed,
        'a',
        answer(r, 'FAILED', {
          endpointId: 'e'.repeat(24),
          atlasErrorMessage: 'bucket policy',
          fields: { endpointFailures: 2, recreating: true },
        }),
      );
      const again = await settleAgain(
        r,
        'b',
        answer(r, 'INITIATING', { endpointId: 'f'.repeat(24), fields: { recreating: undefined } }),
      );

      expect(failed).toMatchObject({
        atlasErrorMessage: 'bucket policy',
        endpointFailures: 2,
        recreating: true,
      });
      expect(failed).not.toHaveProperty('pendingCreate');
      expect(again).toMatchObject({ endpointId: 'f'.repeat(24), endpointFailures: 2 });
      expect(again).not.toHaveProperty('atlasErrorMessage');
      expect(again).not.toHaveProperty('recreating');
    });

    it('leaves a key answered with no endpoint unfollowed', async () => {
      const r = request();
      const settled = await settleAgain(r, 'a', answer(r, 'REQUESTED'));

      expect(settled).not.toHaveProperty('tracked');
      expect((await ledger.listTracked({ limit: 10 })).items).toEqual([]);
    });
  });

  it('records a failure without an HTTP status when there was none', async () => {
    const r = request();
    await ledger.claim(r, 'a', LEASE_SECONDS);

    const item = await ledger.recordFailure(naturalKey(r), 'a', {
      disposition: 'retry',
      code: 'ATLAS_TIMEOUT',
      detail: 'timed out',
    });

    expect(item.lastError).toEqual({ code: 'ATLAS_TIMEOUT', detail: 'timed out', at: at(START) });
  });

  it('ends the listing with no next key on a page shorter than the limit', async () => {
    const r = request();
    await ledger.settle(
      await ledger.claim(r, 'a', LEASE_SECONDS),
      'a',
      answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }),
    );

    const page = await ledger.listTracked({ limit: 5 });

    expect(page.items.map((i) => i.key)).toEqual([naturalKey(r)]);
    expect(page.nextKey).toBeUndefined();
  });

  describe('recordCheck, further', () => {
    const settledAs = async (status: LedgerStatus, extra: Partial<SettleResult> = {}) => {
      const r = request();
      const claimed = await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.settle(claimed, 'a', answer(r, status, { endpointId: 'e'.repeat(24), ...extra }));
      return naturalKey(r);
    };

    it('applies only when the item was not written since it was read', async () => {
      const key = await settledAs('INITIATING');
      const read = (await ledger.get(key))?.updatedAt;
      clock += 1_000;

      const stale = await ledger.recordCheck(
        key,
        'INITIATING',
        { status: 'ACTIVE' },
        undefined,
        at(START - 1),
      );
      const fresh = await ledger.recordCheck(key, 'INITIATING', { status: 'ACTIVE' }, undefined, read);

      expect(stale).toBeUndefined();
      expect(fresh).toMatchObject({ status: 'ACTIVE', statusSince: at(clock), checkedAt: at(clock) });
    });

    it("keeps the status clock when the status stays, and Atlas' error message only while Atlas gives one", async () => {
      const key = await settledAs('FAILED', { atlasErrorMessage: 'old' });
      clock += 1_000;

      const failed = await ledger.recordCheck(key, 'FAILED', { status: 'FAILED', atlasErrorMessage: 'new' });
      const quiet = await ledger.recordCheck(key, 'FAILED', { status: 'FAILED' });

      expect(failed).toMatchObject({ statusSince: at(START), atlasErrorMessage: 'new', tracked: 'OPEN' });
      expect(quiet).not.toHaveProperty('atlasErrorMessage');
    });

    it('moves the key to the endpoint that took the place of a recreated one, and keeps following it', async () => {
      const key = await settledAs('PENDING_RECREATION');
      clock += 1_000;

      const moved = await ledger.recordCheck(key, 'PENDING_RECREATION', {
        status: 'INITIATING',
        statusSince: at(clock),
        fields: { endpointId: 'f'.repeat(24) },
      });

      expect(moved).toMatchObject({
        endpointId: 'f'.repeat(24),
        status: 'INITIATING',
        statusSince: at(clock),
        tracked: 'OPEN',
      });
      expect(await ledger.get(key)).toMatchObject({ endpointId: 'f'.repeat(24) });
    });

    it('does not mark a changed status stuck, and a change clears the stuck mark', async () => {
      const key = await settledAs('PENDING_ACCEPTANCE');
      await ledger.recordCheck(key, 'PENDING_ACCEPTANCE', { status: 'PENDING_ACCEPTANCE', stuck: true });
      clock += 1_000;

      const moved = await ledger.recordCheck(key, 'PENDING_ACCEPTANCE', {
        status: 'INITIATING',
        stuck: true,
      });

      expect(moved).toMatchObject({ status: 'INITIATING', statusSince: at(clock) });
      expect(moved).not.toHaveProperty('stuckAt');
    });

    it('forgets a MISSING endpoint and stops following it, unless events are still to announce', async () => {
      const quiet = await settledAs('ACTIVE');
      const announcing = await settledAs('ACTIVE');

      const missing = await ledger.recordCheck(quiet, 'ACTIVE', { status: 'MISSING' });
      const told = await ledger.recordCheck(announcing, 'ACTIVE', {
        status: 'MISSING',
        events: [event('e'.repeat(32))],
      });

      expect(missing).not.toHaveProperty('endpointId');
      expect(missing).not.toHaveProperty('tracked');
      expect(told).toMatchObject({ status: 'MISSING', tracked: 'OPEN' });
      expect(told).not.toHaveProperty('endpointId');
    });

    it('keeps following a key whose outbox still holds events, whatever the status', async () => {
      const r = request();
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'DELETING', { endpointId: 'e'.repeat(24), events: [event('a'.repeat(32))] }),
      );

      const read = await ledger.get(naturalKey(r));
      const item = await ledger.recordCheck(naturalKey(r), 'DELETING', { status: 'DELETED' }, read?.outbox);

      expect(item).toMatchObject({ status: 'DELETED', tracked: 'OPEN' });
      expect(Object.keys(item?.outbox ?? {})).toEqual(['a'.repeat(32)]);
    });

    it("records the key's follow-up chain with an answer or a check, and keeps it through checks that name none", async () => {
      const key = await settledAs('INITIATING', { fields: { followChain: 'chain-1' } });
      expect(await ledger.get(key)).toMatchObject({ followChain: 'chain-1' });

      const kept = await ledger.recordCheck(key, 'INITIATING', { status: 'PENDING_RECREATION' });
      expect(kept).toMatchObject({ followChain: 'chain-1' });
      const replaced = await ledger.recordCheck(key, 'PENDING_RECREATION', {
        status: 'PENDING_RECREATION',
        fields: { followChain: 'chain-2' },
      });
      expect(replaced).toMatchObject({ followChain: 'chain-2' });
    });

    it('keeps the FAILED count when an endpoint becomes ACTIVE: a brief ACTIVE may fail again', async () => {
      const key = await settledAs('INITIATING', { fields: { endpointFailures: 2 } });
      const steady = await settledAs('ACTIVE', { fields: { endpointFailures: 1 } });
      const failing = await settledAs('INITIATING', { fields: { endpointFailures: 1 } });

      const active = await ledger.recordCheck(key, 'INITIATING', { status: 'ACTIVE' });
      const still = await ledger.recordCheck(steady, 'ACTIVE', { status: 'ACTIVE' });
      const failed = await ledger.recordCheck(failing, 'INITIATING', { status: 'FAILED' });

      expect(active).toMatchObject({ status: 'ACTIVE', endpointFailures: 2 });
      expect(still).toMatchObject({ endpointFailures: 1 });
      expect(failed).toMatchObject({ status: 'FAILED', endpointFailures: 1 });
    });

    it("does nothing while a provisioner holds the key, to the lease's last millisecond", async () => {
      const r = request();
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'INITIATING', { endpointId: 'e'.repeat(24) }),
      );
      await ledger.claim(r, 'b', LEASE_SECONDS);

      clock = START + LEASE_SECONDS * 1000;
      const held = await ledger.recordCheck(naturalKey(r), 'INITIATING', { status: 'ACTIVE' });
      clock += 1;
      const after = await ledger.recordCheck(naturalKey(r), 'INITIATING', { status: 'ACTIVE' });

      expect(held).toBeUndefined();
      expect(after).toMatchObject({ status: 'ACTIVE' });
    });

    it('records a check that announces nothing on a key whose outbox still waits', async () => {
      const r = request();
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24), events: [event('a'.repeat(32))] }),
      );
      clock += 1_000;

      const item = await ledger.recordCheck(naturalKey(r), 'ACTIVE', { status: 'ACTIVE' });

      expect(item).toMatchObject({ checkedAt: at(clock) });
      expect(Object.keys(item?.outbox ?? {})).toEqual(['a'.repeat(32)]);
    });

    it('writes the bookkeeping of extra endpoints, an empty list removing it', async () => {
      const key = await settledAs('ACTIVE', { fields: { unconfirmedCreates: [at(START)] } });

      const item = await ledger.recordCheck(key, 'ACTIVE', {
        status: 'ACTIVE',
        fields: { unconfirmedCreates: [], reported: ['x'.repeat(24)] },
      });

      expect(item).toMatchObject({ reported: ['x'.repeat(24)] });
      expect(item).not.toHaveProperty('unconfirmedCreates');
      const forgotten = await ledger.recordCheck(key, 'ACTIVE', {
        status: 'ACTIVE',
        fields: { reported: undefined },
      });
      expect(forgotten).not.toHaveProperty('reported');
    });

    it('remembers a project found gone, and retires the key: MISSING with its reason, nothing in doubt, nobody holding it, followed until its events are sent', async () => {
      const key = await settledAs('ACTIVE', { holds: ['default'], fields: { endpointFailures: 1 } });
      const r = request();
      const recreating = naturalKey(r);
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'FAILED', { endpointId: 'f'.repeat(24) }),
      );
      await ledger.claim(r, 'a', LEASE_SECONDS);
      await ledger.amend(recreating, 'a', { recreating: true, pendingCreate: { sentAt: at(START) } });
      await ledger.release(recreating, 'a');

      const noted = await ledger.recordCheck(key, 'ACTIVE', {
        status: 'ACTIVE',
        fields: { projectGoneSince: at(START) },
      });
      expect(noted).toMatchObject({ status: 'ACTIVE', projectGoneSince: at(START), tracked: 'OPEN' });
      clock += 600_000;

      const reason = { code: 'GROUP_NOT_FOUND', httpStatus: 404, detail: 'No group exists.', at: at(clock) };
      const retire = (k: string, status: LedgerStatus, read: string | undefined, id: string) =>
        ledger.recordCheck(
          k,
          status,
          {
            status: 'MISSING',
            statusSince: at(clock),
            fields: {
              lastError: reason,
              projectGoneSince: undefined,
              pendingCreate: undefined,
              recreating: undefined,
            },
            events: [event(id)],
          },
          undefined,
          read,
        );
      const retired = await retire(key, 'ACTIVE', noted?.updatedAt, 'a'.repeat(32));
      const forgotten = await retire(
        recreating,
        'FAILED',
        (await ledger.get(recreating))?.updatedAt,
        'b'.repeat(32),
      );

      expect(retired).toMatchObject({
        status: 'MISSING',
        statusSince: at(clock),
        lastError: reason,
        tracked: 'OPEN',
      });
      for (const gone of ['endpointId', 'holds', 'projectGoneSince'])
        expect(retired).not.toHaveProperty(gone);
      expect(forgotten).toMatchObject({ status: 'MISSING', lastError: reason });
      for (const gone of ['endpointId', 'pendingCreate', 'recreating'])
        expect(forgotten).not.toHaveProperty(gone);
      await ledger.clearOutbox(key, ['a'.repeat(32)]);
      expect(await ledger.get(key)).not.toHaveProperty('tracked');
    });
  });

  describe('lifecycles, following and binding', () => {
    const settleAgain = async (r: ProvisionRequest, owner: string, result: SettleResult) =>
      ledger.settle(await ledger.claim(r, owner, LEASE_SECONDS), owner, result);

    it('moves a redelivered request to the end once, restarts the list for a create on a key left without an endpoint, and adds delete to delete', async () => {
      const r1 = request();
      const key = naturalKey(r1);
      const r2 = { ...r1, requestId: 'r2' };
      await settleAgain(r1, 'a', answer(r1, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      await settleAgain(r2, 'b', answer(r2, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      const redelivered = await settleAgain(r1, 'c', answer(r1, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      await ledger.recordCheck(key, 'ACTIVE', { status: 'MISSING' });
      const r3 = { ...r1, requestId: 'r3' };
      const recreated = await settleAgain(r3, 'd', answer(r3, 'INITIATING', { endpointId: 'f'.repeat(24) }));
      const d1 = { ...r1, requestId: 'd1', action: 'delete' as const };
      const d2 = { ...r1, requestId: 'd2', action: 'delete' as const };
      await settleAgain(d1, 'e', answer(d1, 'DELETED'));
      const deleted = await settleAgain(d2, 'f', answer(d2, 'DELETED'));

      expect(redelivered.requesters).toEqual({ default: ['r2', r1.requestId] });
      expect(recreated.requesters).toEqual({ default: ['r3'] });
      expect(deleted.requesters).toEqual({ default: ['d1', 'd2'] });
    });

    it('follows a key for its events until they are sent, and a key answered with no endpoint not at all', async () => {
      const r = request();
      await settleAgain(r, 'a', answer(r, 'DELETED', { events: [event('a'.repeat(32))] }));
      const waiting = await settleAgain(r, 'b', answer(r, 'DELETED'));
      const bare = request();
      const failed = await settleAgain(bare, 'a', answer(bare, 'FAILED'));

      expect(waiting).toMatchObject({ tracked: 'OPEN' });
      expect(Object.keys(waiting.outbox ?? {})).toEqual(['a'.repeat(32)]);
      expect(failed).not.toHaveProperty('tracked');
    });

    it('binds the key to the profile of a request that answers it with a followed endpoint, and of no other', async () => {
      const r = request();
      const other = { ...r, requestId: 'ops', profile: 'team_b' };
      await settleAgain(r, 'a', answer(r, 'DELETED'));

      const gone = await settleAgain(other, 'b', answer(other, 'DELETED', { endpointId: 'e'.repeat(24) }));
      const unnamed = await settleAgain(other, 'c', answer(other, 'PENDING_ACCEPTANCE'));
      const adopted = await settleAgain(other, 'd', answer(other, 'ACTIVE', { endpointId: 'f'.repeat(24) }));

      expect(gone.profile).toBe(r.profile);
      expect(unnamed.profile).toBe(r.profile);
      expect(adopted.profile).toBe('team_b');
    });

    it('reads a key as bound while it has a followed endpoint, a create in doubt or a FAILED endpoint being recreated', async () => {
      const r = request();
      const key = naturalKey(r);
      const fresh = await ledger.claim(r, 'a', LEASE_SECONDS);
      const sent = await ledger.amend(key, 'a', { pendingCreate: { sentAt: at(clock) } });
      const unsent = await ledger.amend(key, 'a', { pendingCreate: undefined, recreating: true });
      const idle = await ledger.amend(key, 'a', { recreating: undefined, status: 'PENDING_ACCEPTANCE' });
      const active = await ledger.settle(idle, 'a', answer(r, 'ACTIVE', { endpointId: 'e'.repeat(24) }));
      const del = { ...r, requestId: 'del', action: 'delete' as const };
      const deleted = await settleAgain(del, 'b', answer(del, 'DELETED'));

      expect(boundProfile(fresh)).toBeUndefined();
      expect(boundProfile(sent)).toBe(r.profile);
      expect(boundProfile(unsent)).toBe(r.profile);
      expect(idle).toMatchObject({ status: 'PENDING_ACCEPTANCE' });
      expect(idle).not.toHaveProperty('endpointId');
      expect(boundProfile(idle)).toBeUndefined();
      expect(boundProfile(active)).toBe(r.profile);
      expect(boundProfile(deleted)).toBeUndefined();
    });

    it('clears a create in doubt that a settle is told to forget', async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.claim(r, 'a', LEASE_SECONDS);
      const sent = await ledger.amend(key, 'a', { pendingCreate: { sentAt: at(clock) } });

      const settled = await ledger.settle(
        sent,
        'a',
        answer(r, 'INITIATING', { endpointId: 'e'.repeat(24), fields: { pendingCreate: undefined } }),
      );

      expect(settled).not.toHaveProperty('pendingCreate');
      expect(settled).toMatchObject({ status: 'INITIATING', endpointId: 'e'.repeat(24) });
    });
  });

  describe('clearOutbox', () => {
    it('keeps following an endpoint after its events are sent, and keeps events not yet sent', async () => {
      const r = request();
      const key = naturalKey(r);
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'ACTIVE', {
          endpointId: 'e'.repeat(24),
          events: [event('a'.repeat(32)), event('b'.repeat(32))],
        }),
      );

      await ledger.clearOutbox(key, []);
      await ledger.clearOutbox(key, ['c'.repeat(32)]);
      const untouched = await ledger.get(key);
      await ledger.clearOutbox(key, ['a'.repeat(32), 'b'.repeat(32)]);
      const cleared = await ledger.get(key);

      expect(Object.keys(untouched?.outbox ?? {}).sort()).toEqual(['a'.repeat(32), 'b'.repeat(32)]);
      expect(cleared).not.toHaveProperty('outbox');
      expect(cleared).toMatchObject({ tracked: 'OPEN' });
    });

    it('does nothing for a key it does not hold or one without an outbox', async () => {
      const r = request();
      await ledger.settle(await ledger.claim(r, 'a', LEASE_SECONDS), 'a', answer(r, 'REQUESTED'));

      await expect(ledger.clearOutbox('no-such-key', ['a'.repeat(32)])).resolves.toBeUndefined();
      await ledger.clearOutbox(naturalKey(r), ['a'.repeat(32)]);

      expect(await ledger.get(naturalKey(r))).toMatchObject({ status: 'REQUESTED' });
    });
  });
  describe('answers kept with no key', () => {
    it('keeps an answer once, on the check index, with the answer in its outbox', async () => {
      const kept = event('d'.repeat(32));

      await ledger.keepAnswer(kept);
      clock += 1_000;
      await ledger.keepAnswer({ ...kept, occurredAt: at(clock) });

      const { items } = await ledger.listTracked({ limit: 10 });
      const answers = items.filter((i) => i.key.startsWith('answer#'));
      expect(answers).toHaveLength(1);
      expect(answers[0]?.key).toBe(`answer#${'d'.repeat(32)}`);
      expect(answers[0]?.outbox).toEqual({ [kept.eventId]: kept });
    });

    it('deletes a kept answer only once its outbox was cleared', async () => {
      const kept = event('e'.repeat(32));
      const key = `answer#${kept.eventId}`;
      await ledger.keepAnswer(kept);

      await ledger.forgetAnswer(key);
      expect(await ledger.get(key)).toBeDefined();
      await ledger.clearOutbox(key, [kept.eventId]);
      await ledger.forgetAnswer(key);

      expect(await ledger.get(key)).toBeUndefined();
    });
  });

  describe('requesters and holds', () => {
    const settleAs = async (
      r: ProvisionRequest,
      requester: string | undefined,
      owner: string,
      status: LedgerStatus,
      extra: Partial<SettleResult> = {},
    ) =>
      ledger.settle(
        await ledger.claim(r, owner, LEASE_SECONDS),
        owner,
        answer(r, status, {
          ...extra,
          request: { ...r, ...(requester !== undefined && { requester }) },
        }),
      );
    const endpoint = { endpointId: 'e'.repeat(24) };

    it("keeps each requester's requestIds apart: another requester's traffic never pushes them out", async () => {
      const r = request();
      await settleAs({ ...r, requestId: 'b-1' }, 'team-b', 'b0', 'ACTIVE', endpoint);
      let settled = await ledger.get(naturalKey(r));
      for (let i = 0; i < MAX_REQUEST_IDS + 5; i++)
        settled = await settleAs({ ...r, requestId: `a-${i}` }, 'team-a', `a${i}`, 'ACTIVE', endpoint);

      expect(settled?.requesters['team-b']).toEqual(['b-1']);
      expect(settled?.requesters['team-a']).toHaveLength(MAX_REQUEST_IDS);
      expect(settled?.requesters['team-a']?.[0]).toBe('a-5');
      expect(settled?.requesters['team-a']?.at(-1)).toBe(`a-${MAX_REQUEST_IDS + 4}`);
      expect(settled).toMatchObject({ lastRequester: 'team-a' });
    });

    it('records a request that names no requester as the default one', async () => {
      const r = request();

      const settled = await settleAs(r, undefined, 'a', 'ACTIVE', endpoint);

      expect(settled).toMatchObject({ requesters: { default: [r.requestId] }, lastRequester: 'default' });
    });

    it("keeps the other requesters' lists across a new lifecycle until the key's endpoint is gone, then starts afresh", async () => {
      const r = request();
      const key = naturalKey(r);
      await settleAs({ ...r, requestId: 'a-1' }, 'team-a', 'a', 'ACTIVE', endpoint);
      await settleAs({ ...r, requestId: 'b-1' }, 'team-b', 'b', 'ACTIVE', endpoint);

      // B's delete starts a lifecycle while A's endpoint stands: A still hears what becomes of it.
      const deleting = await settleAs(
        { ...r, requestId: 'b-del', action: 'delete' },
        'team-b',
        'c',
        'DELETING',
        endpoint,
      );
      expect(deleting.requesters).toEqual({ 'team-a': ['a-1'], 'team-b': ['b-del'] });

      await ledger.recordCheck(key, 'DELETING', { status: 'DELETED' });
      // A create after the endpoint went: a new lifecycle that no earlier request belongs to.
      const created = await settleAs({ ...r, requestId: 'c-1' }, 'team-c', 'd', 'INITIATING', endpoint);
      expect(created.requesters).toEqual({ 'team-c': ['c-1'] });
    });

    it("reads an item written before requesters had names as the default requester's, and a settle moves it over", async () => {
      const r = request();
      const key = naturalKey(r);
      const legacy = {
        key,
        groupId: r.groupId,
        cloudProvider: r.cloudProvider,
        regionName: r.regionName,
        profile: r.profile,
        action: 'create',
        status: 'ACTIVE',
        statusSince: at(START),
        endpointId: 'e'.repeat(24),
        checkedAt: NEVER_CHECKED,
        createdAt: at(START),
        updatedAt: at(START),
      };
      await putRaw({ ...legacy, requestIds: ['old-1', 'old-2'] });
      const read = await ledger.get(key);
      await putRaw({ ...legacy, key: `${key}-set`, requestIds: new Set(['old-3']) });
      const readSet = await ledger.get(`${key}-set`);

      const claimed = await ledger.claim({ ...r, requestId: 'new-1' }, 'a', LEASE_SECONDS);
      const settled = await ledger.settle(claimed, 'a', {
        ...answer(r, 'ACTIVE', endpoint),
        request: { ...r, requestId: 'new-1', requester: 'team-a' },
      });

      expect(read?.requesters).toEqual({ default: ['old-1', 'old-2'] });
      expect(read).not.toHaveProperty('requestIds');
      expect(read).not.toHaveProperty('holds');
      expect(readSet?.requesters).toEqual({ default: ['old-3'] });
      expect(claimed.requesters).toEqual({ default: ['old-1', 'old-2'] });
      expect(settled.requesters).toEqual({ default: ['old-1', 'old-2'], 'team-a': ['new-1'] });
      expect(settled).not.toHaveProperty('requestIds');
      expect(await ledger.get(key)).toEqual(settled);
    });

    it('writes the holds it is given, keeps them when none are given, removes them when empty, and clears them on DELETED', async () => {
      const r = request();
      const key = naturalKey(r);

      const held = await settleAs(r, 'team-a', 'a', 'ACTIVE', {
        ...endpoint,
        holds: ['team-a', 'team-b', 'team-a'],
      });
      const kept = await settleAs(r, 'team-a', 'b', 'ACTIVE', endpoint);
      const released = await settleAs(r, 'team-b', 'c', 'ACTIVE', { ...endpoint, holds: [] });
      await settleAs(r, 'team-a', 'd', 'ACTIVE', { ...endpoint, holds: ['team-a'] });
      const deleted = await settleAs({ ...r, action: 'delete' }, 'team-a', 'e', 'DELETED', {
        holds: ['team-a'],
      });

      expect(held.holds).toEqual(['team-a', 'team-b']);
      expect(kept.holds).toEqual(['team-a', 'team-b']);
      expect(released).not.toHaveProperty('holds');
      expect(deleted).not.toHaveProperty('holds');
      expect(await ledger.get(key)).not.toHaveProperty('holds');
    });

    it('clears the holds of a key a check finds DELETED or MISSING, and keeps them for any other status', async () => {
      const gone = request();
      const missing = request();
      for (const r of [gone, missing])
        await settleAs(r, 'team-a', 'a', 'ACTIVE', { ...endpoint, holds: ['team-a'] });

      const failed = await ledger.recordCheck(naturalKey(gone), 'ACTIVE', { status: 'DELETING' });
      const deleted = await ledger.recordCheck(naturalKey(gone), 'DELETING', { status: 'DELETED' });
      const lost = await ledger.recordCheck(naturalKey(missing), 'ACTIVE', { status: 'MISSING' });

      expect(failed?.holds).toEqual(['team-a']);
      expect(deleted).not.toHaveProperty('holds');
      expect(lost).not.toHaveProperty('holds');
      expect(deleted).toMatchObject({ requesters: { 'team-a': [gone.requestId] } });
    });
  });

  describe('the outbox: one bound, and the latest status of an endpoint', () => {
    const E = 'e'.repeat(24);
    const F = 'f'.repeat(24);
    const id = (n: number) => n.toString(16).padStart(32, '0');
    /** A pending event of key `key` about endpoint `endpointId`, as the sweep or a request records it. */
    const about = (
      key: string,
      n: number,
      fields: Partial<StatusChangedDetail> & Pick<StatusChangedDetail, 'outcome'>,
    ): StatusChangedDetail => ({
      version: '1',
      eventId: id(n),
      requester: 'default',
      requestIds: ['req'],
      naturalKey: key,
      endpointId: E,
      occurredAt: at(clock),
      ...fields,
    });
    const outboxOf = async (key: string) => Object.keys((await ledger.get(key))?.outbox ?? {}).sort();

    it('replaces a pending status of the same endpoint and kind by a newer one reaching the same requesters, and nothing else', async () => {
      const r = request();
      const key = naturalKey(r);
      const kept = [
        // Answers to requests: each its own fact, whatever status it names.
        about(key, 1, { outcome: 'PROVISIONED', messageId: 'm-1', status: 'INITIATING' }),
        about(key, 2, { outcome: 'DELETED', messageId: 'm-2', status: 'DELETED' }),
        // Another endpoint's status, and an event naming a new endpoint.
        about(key, 3, { outcome: 'STATUS_CHANGED', endpointId: F, status: 'AVAILABLE' }),
        about(key, 4, { outcome: 'RECREATED', previousEndpointId: F, status: 'INITIATING' }),
        // A status reaching a requester the newer ones do not name (an older lifecycle's).
        about(key, 5, { outcome: 'STATUS_CHANGED', requestIds: ['req', 'gone'], status: 'AVAILABLE' }),
      ];
      const older = about(key, 6, { outcome: 'STATUS_CHANGED', status: 'AVAILABLE' });
      const stuck = about(key, 7, { outcome: 'STUCK', status: 'AVAILABLE' });
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'AVAILABLE', { endpointId: E, events: [...kept, older, stuck] }),
      );
      clock += 1_000;

      const newer = about(key, 8, {
        outcome: 'STATUS_CHANGED',
        requestIds: ['req', 'new'],
        status: 'ACTIVE',
      });
      const first = await ledger.recordCheck(
        key,
        'AVAILABLE',
        { status: 'ACTIVE', statusSince: at(clock), events: [newer] },
        (await ledger.get(key))?.outbox,
      );
      // MISSING (and DELETED) are statuses of the endpoint too; STUCK is a kind of its own.
      const gone = about(key, 9, { outcome: 'MISSING', requestIds: ['req', 'new'], status: 'MISSING' });
      const second = await ledger.recordCheck(
        key,
        'ACTIVE',
        { status: 'MISSING', events: [gone] },
        first?.outbox,
      );

      expect(Object.keys(first?.outbox ?? {}).sort()).toEqual(
        [...kept, stuck, newer].map((e) => e.eventId).sort(),
      );
      expect(Object.keys(second?.outbox ?? {}).sort()).toEqual(
        [...kept, stuck, gone].map((e) => e.eventId).sort(),
      );
      expect(await outboxOf(key)).toEqual([...kept, stuck, gone].map((e) => e.eventId).sort());
    });

    it('keeps MAX_OUTBOX events at most: a check that would add one more is not recorded, one that replaces a pending status is', async () => {
      const r = request();
      const key = naturalKey(r);
      const older = about(key, 0, { outcome: 'STATUS_CHANGED', status: 'INITIATING' });
      const answers = Array.from({ length: MAX_OUTBOX - 1 }, (_, i) =>
        about(key, i + 1, { outcome: 'PROVISIONED', messageId: `m-${i}` }),
      );
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'INITIATING', { endpointId: E, events: [older, ...answers] }),
      );
      const read = await ledger.get(key);
      clock += 1_000;

      const another = about(key, 100, { outcome: 'STATUS_CHANGED', endpointId: F, status: 'ACTIVE' });
      const refused = await ledger.recordCheck(
        key,
        'INITIATING',
        { status: 'ACTIVE', events: [another] },
        read?.outbox,
      );
      const newer = about(key, 101, { outcome: 'STATUS_CHANGED', status: 'ACTIVE' });
      const replaced = await ledger.recordCheck(
        key,
        'INITIATING',
        { status: 'ACTIVE', events: [newer] },
        read?.outbox,
      );

      expect(MAX_OUTBOX).toBe(50);
      expect(refused).toBeUndefined();
      expect(replaced).toMatchObject({ status: 'ACTIVE' });
      expect(await outboxOf(key)).toEqual([...answers, newer].map((e) => e.eventId).sort());
    });

    it('credits a replaced status only while it is still pending: taken by EventBridge since the read, it makes room itself', async () => {
      const r = request();
      const key = naturalKey(r);
      const older = about(key, 0, { outcome: 'STATUS_CHANGED', status: 'INITIATING' });
      const answers = Array.from({ length: MAX_OUTBOX - 1 }, (_, i) =>
        about(key, i + 1, { outcome: 'PROVISIONED', messageId: `m-${i}` }),
      );
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'INITIATING', { endpointId: E, events: [older, ...answers] }),
      );
      const read = await ledger.get(key);
      await ledger.clearOutbox(key, [older.eventId]);
      clock += 1_000;

      const newer = about(key, 101, { outcome: 'STATUS_CHANGED', status: 'ACTIVE' });
      const two = [newer, about(key, 102, { outcome: 'STUCK', endpointId: F, status: 'INITIATING' })];
      // Two new events where one was replaced: 49 + 2 would pass the bound.
      const refused = await ledger.recordCheck(
        key,
        'INITIATING',
        { status: 'ACTIVE', events: two },
        read?.outbox,
      );
      const recorded = await ledger.recordCheck(
        key,
        'INITIATING',
        { status: 'ACTIVE', events: [newer] },
        read?.outbox,
      );

      expect(refused).toBeUndefined();
      expect(recorded).toMatchObject({ status: 'ACTIVE' });
      expect(await outboxOf(key)).toEqual([...answers, newer].map((e) => e.eventId).sort());
    });

    it('refuses a settle that would pass MAX_OUTBOX, writing nothing and keeping the lease, until events are sent', async () => {
      const r = request();
      const key = naturalKey(r);
      const answers = Array.from({ length: MAX_OUTBOX }, (_, i) =>
        about(key, i, { outcome: 'PROVISIONED', messageId: `m-${i}` }),
      );
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'ACTIVE', { endpointId: E, events: answers }),
      );
      const next = { ...r, requestId: 'next' };
      const claimed = await ledger.claim(next, 'b', LEASE_SECONDS);
      const one = about(key, 100, { outcome: 'ADOPTED', messageId: 'm-next' });

      await expect(
        ledger.settle(claimed, 'b', answer(next, 'ACTIVE', { endpointId: E, events: [one] })),
      ).rejects.toMatchObject({
        name: 'EventsBackloggedError',
      });
      const kept = await ledger.get(key);
      expect(kept?.requesters.default ?? []).not.toContain('next');
      expect(kept?.lease?.owner).toBe('b');
      expect(Object.keys(kept?.outbox ?? {})).toHaveLength(MAX_OUTBOX);

      await ledger.clearOutbox(key, [id(0)]);
      const settled = await ledger.settle(
        claimed,
        'b',
        answer(next, 'ACTIVE', { endpointId: E, events: [one] }),
      );
      expect(settled.requesters.default).toContain('next');
      expect(Object.keys(settled.outbox ?? {})).toHaveLength(MAX_OUTBOX);
    });

    it('refuses more events than MAX_OUTBOX in one write, even to an empty outbox', async () => {
      const r = request();
      const key = naturalKey(r);
      const many = Array.from({ length: MAX_OUTBOX + 1 }, (_, i) =>
        about(key, i, { outcome: 'PROVISIONED', messageId: `m-${i}` }),
      );
      await expect(
        ledger.settle(
          await ledger.claim(r, 'a', LEASE_SECONDS),
          'a',
          answer(r, 'ACTIVE', { endpointId: E, events: many }),
        ),
      ).rejects.toMatchObject({ name: 'EventsBackloggedError' });
      await ledger.settle(
        await ledger.claim(r, 'a', LEASE_SECONDS),
        'a',
        answer(r, 'ACTIVE', { endpointId: E }),
      );

      const checked = await ledger.recordCheck(key, 'ACTIVE', { status: 'MISSING', events: many });

      expect(checked).toBeUndefined();
      expect(await ledger.get(key)).toMatchObject({ status: 'ACTIVE' });
    });
  });
}
