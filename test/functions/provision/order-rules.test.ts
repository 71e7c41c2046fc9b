/**
 * The request order rules of functions/provision/order.ts, one decision at a time: which request
 * a newer one supersedes, what a superseded request is told, when a request starts a lifecycle,
 * who hears that a new lifecycle dropped their requests, and what a continuation carries of the
 * order. order.test.ts drives the same rules through the Provisioner; here each guard is pinned
 * on both of its sides.
 */
import { describe, expect, it } from 'vitest';
import { eventIdOf } from '#events/status-event.ts';
import type { LedgerItem, LedgerStatus, LifecycleMarker } from '#ledger/ledger.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import type { RequesterEntry } from '#messages/requesters.ts';
import {
  lifecycleStarted,
  orderOf,
  supersededAnswer,
  supersededEvents,
  supersedingRequest,
} from '#provision/order.ts';
import type { RecordSource } from '#provision/source.ts';
import type { AtlasResult, Attempt, ProvisionContext } from '#provision/types.ts';
import { DEFAULT_ENTRY, NOW } from './fixtures.ts';

const T = NOW.getTime();
const ctx = { now: () => NOW } as unknown as ProvisionContext;
const OPS: RequesterEntry = { ...DEFAULT_ENTRY, name: 'ops' };

const request = (overrides: Partial<ProvisionRequest> = {}): ProvisionRequest => ({
  requestId: 'req-1',
  action: 'create',
  groupId: 'aaaaaaaaaaaaaaaaaaaaaaaa',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  profile: 'default',
  ...overrides,
});
const KEY = naturalKey(request());

/** A delivery of `messageId` from the default requester, sent at T unless told otherwise. */
function attempt(source: Partial<RecordSource> = {}, messageId = 'msg-1'): Attempt {
  return {
    messageId,
    source: {
      requester: DEFAULT_ENTRY,
      continuation: false,
      followUp: false,
      messageId,
      fromSender: true,
      sentAt: T,
      ...source,
    },
  } as Attempt;
}

/** The key's ledger item: a create INITIATING unless told otherwise. */
function item(overrides: Partial<LedgerItem> = {}): LedgerItem {
  return {
    key: KEY,
    groupId: 'aaaaaaaaaaaaaaaaaaaaaaaa',
    cloudProvider: 'AWS',
    regionName: 'US_EAST_1',
    profile: 'default',
    action: 'create',
    requesters: {},
    status: 'INITIATING',
    statusSince: NOW.toISOString(),
    checkedAt: NOW.toISOString(),
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    ...overrides,
  } as LedgerItem;
}

const marker = (overrides: Partial<LifecycleMarker> = {}): LifecycleMarker => ({
  messageId: 'msg-lifecycle',
  sentAt: T,
  requestId: 'req-lifecycle',
  requester: 'default',
  action: 'create',
  ...overrides,
});

describe('supersedingRequest', () => {
  describe('a hand-back or follow-up (a continuation carrying Lifecycle)', () => {
    const continuation = (lifecycle: string | undefined) =>
      attempt({ continuation: true, fromSender: false, sentAt: undefined, lifecycle }, 'hand-back-1');

    it('of another lifecycle than the key is in is superseded by the request that started the current one', () => {
      const claimed = item({ lifecycle: marker({ messageId: 'msg-now' }) });
      expect(supersedingRequest(claimed, continuation('msg-before'), request())).toBe('req-lifecycle');
    });

    it('of the lifecycle the key is in acts', () => {
      const claimed = item({ lifecycle: marker({ messageId: 'msg-now' }) });
      expect(supersedingRequest(claimed, continuation('msg-now'), request())).toBeUndefined();
    });

    it('without a Lifecycle acts, whatever lifecycle the key is in', () => {
      const claimed = item({ lifecycle: marker({ messageId: 'msg-now' }) });
      expect(supersedingRequest(claimed, continuation(undefined), request())).toBeUndefined();
    });

    it('acts on a key that has no lifecycle recorded yet', () => {
      expect(supersedingRequest(item(), continuation('msg-before'), request())).toBeUndefined();
    });

    it('is only a continuation: a request from a requester queue is not judged by a Lifecycle', () => {
      const claimed = item({ lifecycle: marker({ messageId: 'msg-now' }) });
      const fromQueue = attempt({ continuation: false, sentAt: undefined, lifecycle: 'msg-before' });
      expect(supersedingRequest(claimed, fromQueue, request())).toBeUndefined();
    });
  });

  describe('a request that takes no part in request order', () => {
    const claimed = item({
      action: 'delete',
      applied: { default: { sentAt: T + 1_000, requestId: 'del-2', action: 'delete' } },
      lifecycle: marker({ sentAt: T + 1_000, requestId: 'del-2', action: 'delete' }),
    });

    it('acts when it carries no send time', () => {
      expect(supersedingRequest(claimed, attempt({ sentAt: undefined }), request())).toBeUndefined();
    });

    it('acts when no requester is named', () => {
      expect(supersedingRequest(claimed, attempt({ requester: undefined }), request())).toBeUndefined();
    });
  });

  describe('against the request its own requester applied last', () => {
    const applied = (sentAt: number, action: 'create' | 'delete' = 'delete') =>
      item({ action, applied: { default: { sentAt, requestId: 'mine-2', action } } });

    it('is superseded by a newer one for the other action', () => {
      expect(supersedingRequest(applied(T + 1), attempt(), request())).toBe('mine-2');
    });

    it('acts when the applied one was sent in the same millisecond', () => {
      expect(supersedingRequest(applied(T), attempt(), request())).toBeUndefined();
    });

    it('acts when the newer one asked for the same action', () => {
      expect(supersedingRequest(applied(T + 1, 'create'), attempt(), request())).toBeUndefined();
    });

    it('is not judged by what another requester applied', () => {
      const claimed = item({ applied: { ops: { sentAt: T + 1, requestId: 'ops-2', action: 'delete' } } });
      expect(supersedingRequest(claimed, attempt(), request())).toBeUndefined();
    });
  });

  describe('against the request that started the lifecycle of the key (any requester)', () => {
    const turned = (overrides: Partial<LifecycleMarker> = {}, action: 'create' | 'delete' = 'delete') =>
      item({ action, lifecycle: marker({ requester: 'ops', requestId: 'ops-del', action, ...overrides }) });

    it('is superseded when the key was turned to the other action by a request sent after it', () => {
      expect(supersedingRequest(turned({ sentAt: T + 1 }), attempt(), request())).toBe('ops-del');
    });

    it('acts when the lifecycle started in the same millisecond', () => {
      expect(supersedingRequest(turned({ sentAt: T }), attempt(), request())).toBeUndefined();
    });

    it('acts when the lifecycle started before it was sent', () => {
      expect(supersedingRequest(turned({ sentAt: T - 1 }), attempt(), request())).toBeUndefined();
    });

    it('acts when the key is already turned to its own action', () => {
      const claimed = turned({ sentAt: T + 1 }, 'create');
      expect(supersedingRequest(claimed, attempt(), request())).toBeUndefined();
    });

    it('is never superseded by the lifecycle its own message started', () => {
      const claimed = turned({ sentAt: T + 1, messageId: 'msg-1' });
      expect(supersedingRequest(claimed, attempt({}, 'msg-1'), request())).toBeUndefined();
    });
  });
});

describe('supersededAnswer', () => {
  const answer = (claimed: LedgerItem, at = attempt(), newer = 'del-2') =>
    supersededAnswer(ctx, at, request(), claimed, newer);

  it('names the newer request and the key as it stands, with its endpoint', () => {
    expect(answer(item({ status: 'AVAILABLE', endpointId: 'ep-1' }))).toStrictEqual({
      version: '1',
      outcome: 'SUPERSEDED',
      naturalKey: KEY,
      groupId: 'aaaaaaaaaaaaaaaaaaaaaaaa',
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      action: 'create',
      requester: 'default',
      requestIds: ['req-1'],
      messageId: 'msg-1',
      eventId: eventIdOf('SUPERSEDED', 'msg-1', 'req-1', KEY, 'del-2'),
      supersededBy: 'del-2',
      status: 'AVAILABLE',
      endpointId: 'ep-1',
      occurredAt: NOW.toISOString(),
    });
  });

  it('carries no endpointId when the key has none', () => {
    expect(Object.keys(answer(item({ status: 'DELETED' })))).not.toContain('endpointId');
  });

  it('is one fact per message and newer request: another of either is another eventId', () => {
    const claimed = item();
    const ids = new Set([
      answer(claimed).eventId,
      answer(claimed, attempt({}, 'msg-other')).eventId,
      answer(claimed, attempt(), 'del-3').eventId,
    ]);
    expect(ids.size).toBe(3);
    expect(answer(claimed).eventId).toBe(answer(claimed).eventId);
  });
});

describe('lifecycleStarted', () => {
  const result = (outcome: AtlasResult['outcome'] = 'DELETE_REQUESTED') => ({ outcome });
  const del = request({ requestId: 'del-2', action: 'delete' });

  it('is the request that turns the key to the other action', () => {
    const claimed = item({ lifecycle: marker() });
    expect(lifecycleStarted(claimed, attempt({ requester: OPS }, 'msg-del'), del, result())).toStrictEqual({
      messageId: 'msg-del',
      sentAt: T,
      requestId: 'del-2',
      requester: 'ops',
      action: 'delete',
    });
  });

  it('is the first request settled on a key with no lifecycle, even for the action the key has', () => {
    const claimed = item({ action: 'create' });
    expect(lifecycleStarted(claimed, attempt(), request(), result('PROVISIONED'))).toStrictEqual({
      messageId: 'msg-1',
      sentAt: T,
      requestId: 'req-1',
      requester: 'default',
      action: 'create',
    });
  });

  it('is none for a request of the action the key already has in its lifecycle', () => {
    const claimed = item({ action: 'delete', lifecycle: marker({ action: 'delete' }) });
    expect(lifecycleStarted(claimed, attempt(), del, result())).toBeUndefined();
  });

  it('is none for a release: only the holds change', () => {
    expect(
      lifecycleStarted(item({ lifecycle: marker() }), attempt(), del, result('RELEASED')),
    ).toBeUndefined();
  });

  it('is none for a request without a send time', () => {
    expect(lifecycleStarted(item(), attempt({ sentAt: undefined }), del, result())).toBeUndefined();
  });

  it('is none for a request no requester is named for', () => {
    expect(lifecycleStarted(item(), attempt({ requester: undefined }), del, result())).toBeUndefined();
  });
});

describe('supersededEvents', () => {
  const del = request({ requestId: 'del-9', action: 'delete' });
  const deleting: Pick<AtlasResult, 'outcome' | 'status' | 'endpointId'> = {
    outcome: 'DELETE_REQUESTED',
    status: 'DELETING',
    endpointId: 'ep-1',
  };
  const events = (
    claimed: LedgerItem,
    at = attempt({}, 'msg-del'),
    asked = del,
    result: Pick<AtlasResult, 'outcome' | 'status' | 'endpointId'> = deleting,
  ) => supersededEvents(ctx, at, asked, claimed, result);
  const initiating = (requesters: Record<string, string[]>, status: LedgerStatus = 'INITIATING') =>
    item({ action: 'create', status, endpointId: 'ep-1', requesters });

  it('tells every requester with requestIds on the key SUPERSEDED, sorted by name, never the asker for its own request', () => {
    const claimed = initiating({ zeta: ['z-1'], default: ['c-1', 'del-9'], alpha: ['a-1', 'del-9'] });

    expect(events(claimed)).toStrictEqual(
      [
        ['alpha', ['a-1', 'del-9']],
        ['default', ['c-1']],
        ['zeta', ['z-1']],
      ].map(([requester, requestIds]) => ({
        version: '1',
        outcome: 'SUPERSEDED',
        naturalKey: KEY,
        groupId: 'aaaaaaaaaaaaaaaaaaaaaaaa',
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        action: 'create',
        eventId: eventIdOf('SUPERSEDED', KEY, requester as string, 'msg-del', 'del-9'),
        requester,
        requestIds,
        supersededBy: 'del-9',
        status: 'DELETING',
        endpointId: 'ep-1',
        occurredAt: NOW.toISOString(),
      })),
    );
  });

  it('gives each requester told its own eventId, and another request another one', () => {
    const claimed = initiating({ alpha: ['a-1'], beta: ['b-1'] });
    const first = events(claimed).map((e) => e.eventId);
    const other = events(claimed, attempt({}, 'msg-del-2'), { ...del, requestId: 'del-10' }).map(
      (e) => e.eventId,
    );
    expect(new Set([...first, ...other]).size).toBe(4);
  });

  it('carries no endpointId when the new lifecycle has none', () => {
    const [event] = events(initiating({ alpha: ['a-1'] }), undefined, del, {
      ...deleting,
      endpointId: undefined,
    });
    expect(event?.requestIds).toEqual(['a-1']);
    expect(Object.keys(event ?? {})).not.toContain('endpointId');
  });

  it('tells no one when the asker is the only one and asked only with this request', () => {
    expect(events(initiating({ default: ['del-9'] }))).toEqual([]);
  });

  it('tells a requester that sent the same requestId as the asker, which is not the request of the asker', () => {
    expect(events(initiating({ ops: ['del-9'] })).map((e) => [e.requester, e.requestIds])).toEqual([
      ['ops', ['del-9']],
    ]);
  });

  it.each([
    ['the key keeps its action', item({ action: 'delete', status: 'DELETING', requesters: { a: ['a-1'] } })],
    ['the create had reached ACTIVE', initiating({ a: ['a-1'] }, 'ACTIVE')],
    ['the endpoint was DELETED', initiating({ a: ['a-1'] }, 'DELETED')],
    ['the endpoint was MISSING', initiating({ a: ['a-1'] }, 'MISSING')],
  ])('tells no one when %s', (_, claimed) => {
    expect(events(claimed)).toEqual([]);
  });

  it('tells the requesters of a delete not finished yet when a create turns the key back', () => {
    // A delete whose endpoint still reads ACTIVE has not reached what it asked for.
    const claimed = item({ action: 'delete', status: 'ACTIVE', requesters: { a: ['d-1'] } });
    const create = request({ requestId: 'c-2', action: 'create' });
    const provisioned = { outcome: 'PROVISIONED' as const, status: 'ACTIVE' as const, endpointId: 'ep-1' };
    expect(events(claimed, attempt(), create, provisioned).map((e) => [e.requester, e.requestIds])).toEqual([
      ['a', ['d-1']],
    ]);
  });

  it('tells no one for a release', () => {
    expect(events(initiating({ a: ['a-1'] }), undefined, del, { ...deleting, outcome: 'RELEASED' })).toEqual(
      [],
    );
  });

  it('tells no one for a request no requester is named for', () => {
    expect(events(initiating({ a: ['a-1'] }), attempt({ requester: undefined }))).toEqual([]);
  });
});

describe('orderOf', () => {
  it('carries the send time and the lifecycle of the attempt onto its continuation', () => {
    expect(orderOf(attempt({ sentAt: T - 5, lifecycle: 'msg-lifecycle' }))).toStrictEqual({
      sentAt: T - 5,
      lifecycle: 'msg-lifecycle',
    });
  });

  it('carries neither when the attempt has none', () => {
    expect(orderOf(attempt({ sentAt: undefined, lifecycle: undefined }))).toStrictEqual({});
  });
});
