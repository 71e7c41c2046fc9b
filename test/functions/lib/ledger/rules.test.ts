/**
 * The rules both writers of the ledger apply alike (functions/lib/ledger/rules.ts): when creates
 * in doubt are forgotten, and about requesters: whose requestIds a settle keeps, who holds a key, and
 * who the status checker acts for. The ledgers apply them (test/support/ledger-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  actingRequester,
  endpointFailuresToday,
  freshUnconfirmedCreates,
  MAX_REQUEST_IDS,
  nextRequesters,
  UNCONFIRMED_CREATE_TTL_MS,
  withHold,
  withoutHold,
} from '#ledger/ledger.ts';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';

const ask = (requestId: string, action: 'create' | 'delete' = 'create', requester?: string) => ({
  requestId,
  action,
  profile: 'default',
  ...(requester !== undefined && { requester }),
});

describe('nextRequesters', () => {
  it("adds the request to its requester's list only, most recent last, each once, bounded", () => {
    const full = Array.from({ length: MAX_REQUEST_IDS }, (_, i) => `a-${i}`);
    const claimed = {
      action: 'create' as const,
      status: 'ACTIVE' as const,
      requesters: { a: full, b: ['b-1'] },
    };

    const next = nextRequesters(claimed, ask('a-0', 'create', 'a'));

    expect(next.b).toEqual(['b-1']);
    expect(next.a).toHaveLength(MAX_REQUEST_IDS);
    expect(next.a?.at(-1)).toBe('a-0');
    expect(next.a?.[0]).toBe('a-1');
  });

  it('records a request naming no requester as the default one', () => {
    const next = nextRequesters({ action: 'create', status: 'REQUESTED', requesters: {} }, ask('r'));

    expect(next).toEqual({ [DEFAULT_REQUESTER]: ['r'] });
  });

  it("restarts the answering requester's list on a new lifecycle, keeping the others' until the endpoint is gone", () => {
    const requesters = { a: ['a-1'], b: ['b-1'] };

    const deleteWhileActive = nextRequesters(
      { action: 'create', status: 'ACTIVE', requesters },
      ask('b-2', 'delete', 'b'),
    );
    const createAfterDeleted = nextRequesters(
      { action: 'delete', status: 'DELETED', requesters },
      ask('c-1', 'create', 'c'),
    );
    const createAfterMissing = nextRequesters(
      { action: 'create', status: 'MISSING', requesters },
      ask('a-2', 'create', 'a'),
    );
    const createAfterRequested = nextRequesters(
      { action: 'create', status: 'REQUESTED', requesters },
      ask('a-2', 'create', 'a'),
    );

    expect(deleteWhileActive).toEqual({ a: ['a-1'], b: ['b-2'] });
    expect(createAfterDeleted).toEqual({ c: ['c-1'] });
    expect(createAfterMissing).toEqual({ a: ['a-2'] });
    // No endpoint was made, none went: what the others asked is still to be told.
    expect(createAfterRequested).toEqual({ a: ['a-2'], b: ['b-1'] });
  });
});

describe('holds', () => {
  it('adds a requester once, however often it creates, keeping the oldest first', () => {
    const item = { status: 'ACTIVE' as const, holds: ['a', 'b'] };

    expect(withHold(item, 'a')).toEqual(['a', 'b']);
    expect(withHold(item, 'c')).toEqual(['a', 'b', 'c']);
    expect(withHold({ status: 'REQUESTED' }, 'a')).toEqual(['a']);
    expect(item.holds).toEqual(['a', 'b']);
  });

  it('removes a requester, and removing one that holds nothing changes nothing', () => {
    const item = { status: 'ACTIVE' as const, holds: ['a', 'b'] };

    expect(withoutHold(item, 'a')).toEqual(['b']);
    expect(withoutHold(item, 'c')).toEqual(['a', 'b']);
    expect(withoutHold({ status: 'ACTIVE' }, 'a')).toEqual([]);
  });

  it('reads no holds on a key whose endpoint is gone', () => {
    expect(withHold({ status: 'DELETED', holds: ['a'] }, 'b')).toEqual(['b']);
    expect(withoutHold({ status: 'MISSING', holds: ['a'] }, 'b')).toEqual([]);
  });
});

describe('actingRequester', () => {
  it('acts for the oldest hold, else the requester answered last, else the default one', () => {
    expect(actingRequester({ status: 'FAILED', holds: ['b', 'a'], lastRequester: 'a' })).toBe('b');
    expect(actingRequester({ status: 'FAILED', lastRequester: 'a' })).toBe('a');
    expect(actingRequester({ status: 'FAILED', holds: [], lastRequester: 'a' })).toBe('a');
    expect(actingRequester({ status: 'FAILED' })).toBe(DEFAULT_REQUESTER);
    expect(actingRequester({ status: 'DELETED', holds: ['b'] })).toBe(DEFAULT_REQUESTER);
  });
});

const NOW = new Date('2026-11-29T10:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

describe('endpointFailuresToday', () => {
  it('keeps the FAILED times of the last 24 hours, in their order, and forgets one exactly a day old', () => {
    const day = 24 * 60 * 60 * 1000;
    const item = { endpointFailedAt: [ago(day), ago(day - 1), 'not a time', ago(0)] };
    expect(endpointFailuresToday(item, NOW)).toEqual([ago(day - 1), ago(0)]);
    expect(endpointFailuresToday({}, NOW)).toEqual([]);
  });
});

describe('freshUnconfirmedCreates', () => {
  it('keeps creates in doubt sent within a day, one sent exactly a day ago included, in their order', () => {
    const kept = [ago(UNCONFIRMED_CREATE_TTL_MS), ago(60_000), ago(0)];
    expect(freshUnconfirmedCreates({ unconfirmedCreates: kept }, NOW)).toEqual(kept);
  });

  it('forgets one sent more than a day ago, and a send time it cannot read', () => {
    const item = { unconfirmedCreates: [ago(UNCONFIRMED_CREATE_TTL_MS + 1), 'not a time', ago(5)] };
    expect(freshUnconfirmedCreates(item, NOW)).toEqual([ago(5)]);
  });

  it('has none for a key that remembers none', () => {
    expect(freshUnconfirmedCreates({}, NOW)).toEqual([]);
  });
});
