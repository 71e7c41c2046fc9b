/**
 * The Ledger against real DynamoDB semantics (moto in server mode, started here). Contention is
 * tested one request after another: moto does not make two racing conditional writes atomic.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type LedgerStatus, MAX_REQUEST_IDS, NEVER_CHECKED, type SettleResult } from '#lib/ledger.ts';
import { naturalKey, type ProvisionRequest } from '#lib/request.ts';
import type { StatusChangedDetail } from '#lib/status-event.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { createLedgerTable } from '#test/support/ledger-table.ts';

const START = Date.parse('2026-11-29T10:00:00.000Z');
const LEASE_SECONDS = 60;

let moto: Moto;
let db: DynamoDBDocumentClient;
let tableName: string;
let clock: number;
let ledger: Ledger;
let tables = 0;

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
  requestIds: ['req'],
  occurredAt: at(clock),
});

beforeAll(async () => {
  moto = await startMoto();
  const client = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  db = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  await moto?.stop();
});

beforeEach(async () => {
  tables += 1;
  tableName = `ledger-${tables}`;
  await createLedgerTable(db as unknown as DynamoDBClient, tableName);
  clock = START;
  ledger = new Ledger({ tableName, client: db, now: () => new Date(clock) });
});

describe('Ledger on DynamoDB', () => {
  it('creates the item on the first claim, REQUESTED and leased to its owner', async () => {
    const r = request({ vpcRegionName: 'US_WEST_2' });

    const item = await ledger.claim(r, 'owner-a', LEASE_SECONDS);

    expect(item).toMatchObject({
      key: naturalKey(r),
      groupId: r.groupId,
      vpcRegionName: 'US_WEST_2',
      action: 'create',
      status: 'REQUESTED',
      requestIds: [],
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
    expect(taken).toMatchObject({ lease: { owner: 'owner-b' }, action: 'create', requestIds: [] });
  });

  it('keeps each requestId once, however often it is redelivered', async () => {
    const r = request();
    await ledger.settle(await ledger.claim(r, 'a', LEASE_SECONDS), 'a', answer(r, 'REQUESTED'));
    await ledger.settle(await ledger.claim(r, 'b', LEASE_SECONDS), 'b', answer(r, 'REQUESTED'));

    const again = await ledger.claim(r, 'c', LEASE_SECONDS);

    expect(again.requestIds).toEqual([r.requestId]);
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
    const kept = (await ledger.get(naturalKey(r)))?.requestIds ?? [];
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
    expect(settled.requestIds).toEqual(['retire']);
  });

  it('writes a create down while the lease is held, and keeps it in doubt until a settle or an answered failure', async () => {
    const r = request();
    const key = naturalKey(r);
    await ledger.claim(r, 'a', LEASE_SECONDS);

    const amended = await ledger.amend(key, 'a', {
      pendingCreate: { sentAt: at(clock) },
      unconfirmedCreates: [at(START - 1)],
    });
    await expect(ledger.amend(key, 'other', { pendingCreate: { sentAt: at(clock) } })).rejects.toBeInstanceOf(
      ConditionalCheckFailedException,
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
    await ledger.settle(
      await ledger.claim(r, 'a', LEASE_SECONDS),
      'a',
      answer(r, 'DELETED', { events: [event('a'.repeat(32))] }),
    );
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
      true,
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
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
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

    await expect(ledger.recordFailure(naturalKey(r), 'b', failure('X'))).rejects.toBeInstanceOf(
      ConditionalCheckFailedException,
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
});
