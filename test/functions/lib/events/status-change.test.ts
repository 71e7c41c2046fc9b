import { describe, expect, it } from 'vitest';
import {
  audience,
  goneStatus,
  handBackRequest,
  itemDetails,
  requesterEventId,
  SETTLED,
  statusChange,
} from '#events/status-change.ts';
import { eventIdOf } from '#events/status-event.ts';
import type { LedgerItem } from '#ledger/item.ts';

const NOW = new Date('2026-11-29T10:00:00.000Z');
const KEY = '5f0c1a2b3c4d5e6f7a8b9c0d#AWS#US_EAST_1#US_EAST_1';

const item = (overrides: Partial<LedgerItem> = {}): LedgerItem => ({
  key: KEY,
  groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  profile: 'default',
  action: 'create',
  requesters: { default: ['req-1', 'req-2'] },
  status: 'INITIATING',
  statusSince: '2026-11-29T09:00:00.000Z',
  endpointId: 'vpce-1',
  checkedAt: '2026-11-29T09:30:00.000Z',
  createdAt: '2026-11-29T09:00:00.000Z',
  updatedAt: '2026-11-29T09:00:00.000Z',
  ...overrides,
});

describe('SETTLED', () => {
  it('holds the statuses a follow-up stops at, and no in-progress one', () => {
    expect([...SETTLED].sort()).toEqual(
      ['ACTIVE', 'DELETED', 'FAILED', 'MISSING', 'PENDING_ACCEPTANCE', 'REQUESTED'].sort(),
    );
  });
});

describe('goneStatus', () => {
  it('is DELETED for a delete or an endpoint that was DELETING, MISSING for any other', () => {
    expect(goneStatus(item({ action: 'delete', status: 'ACTIVE' }))).toBe('DELETED');
    expect(goneStatus(item({ action: 'create', status: 'DELETING' }))).toBe('DELETED');
    expect(goneStatus(item({ action: 'create', status: 'ACTIVE' }))).toBe('MISSING');
  });
});

describe('itemDetails', () => {
  const extra = { eventId: 'e'.repeat(32), status: 'ACTIVE', occurredAt: NOW.toISOString() };

  it('carries the item’s key, its requester’s requestIds and its endpoint, under the requester’s eventId', () => {
    expect(itemDetails('STATUS_CHANGED', item(), extra)).toStrictEqual([
      {
        version: '1',
        outcome: 'STATUS_CHANGED',
        naturalKey: KEY,
        groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        action: 'create',
        requester: 'default',
        requestIds: ['req-1', 'req-2'],
        endpointId: 'vpce-1',
        ...extra,
        eventId: eventIdOf('e'.repeat(32), 'default'),
      },
    ]);
  });

  it('is one event per requester with requestIds on the key, each with its own requestIds and eventId, the rest the same', () => {
    const details = itemDetails(
      'STATUS_CHANGED',
      item({ requesters: { 'team-b': ['b-1'], 'team-a': ['a-1', 'a-2'], idle: [] } }),
      extra,
    );

    expect(details.map((d) => [d.requester, d.requestIds, d.eventId])).toEqual([
      ['team-a', ['a-1', 'a-2'], requesterEventId(extra.eventId, 'team-a')],
      ['team-b', ['b-1'], requesterEventId(extra.eventId, 'team-b')],
    ]);
    expect(new Set(details.map((d) => d.eventId)).size).toBe(2);
    const strip = ({ requester, requestIds, eventId, ...rest }: (typeof details)[number]) => rest;
    expect(strip(details[0] as (typeof details)[number])).toStrictEqual(
      strip(details[1] as (typeof details)[number]),
    );
  });

  it('is one event for the default requester, with no requestIds, on a key no requester has requestIds on', () => {
    expect(audience({ requesters: {} })).toEqual([['default', []]]);
    expect(itemDetails('STUCK', item({ requesters: { 'team-a': [] } }), extra)).toMatchObject([
      { requester: 'default', requestIds: [], eventId: requesterEventId(extra.eventId, 'default') },
    ]);
  });

  it('names no endpoint for an item without one, and lets the extra fields override', () => {
    const [detail] = itemDetails('STUCK', item({ endpointId: undefined }), {
      ...extra,
      endpointId: 'vpce-9',
    });

    expect(detail?.endpointId).toBe('vpce-9');
    expect(itemDetails('STUCK', item({ endpointId: undefined }), extra)[0]).not.toHaveProperty('endpointId');
  });
});

describe('statusChange', () => {
  it('records the new status since now, and announces it as STATUS_CHANGED with the previous one', () => {
    const { result, events } = statusChange(item(), { status: 'PENDING_ACCEPTANCE' }, NOW);
    const [event] = events;

    expect(result).toStrictEqual({ status: 'PENDING_ACCEPTANCE', statusSince: NOW.toISOString() });
    expect(events).toHaveLength(1);
    expect(event).toMatchObject({
      outcome: 'STATUS_CHANGED',
      eventId: requesterEventId(
        eventIdOf('STATUS_CHANGED', KEY, 'vpce-1', 'PENDING_ACCEPTANCE', NOW.toISOString()),
        'default',
      ),
      requester: 'default',
      previousStatus: 'INITIATING',
      status: 'PENDING_ACCEPTANCE',
      statusSince: NOW.toISOString(),
      occurredAt: NOW.toISOString(),
      endpointId: 'vpce-1',
      requestIds: ['req-1', 'req-2'],
    });
    expect(event).not.toHaveProperty('errorMessage');
  });

  it('announces a gone endpoint as DELETED or MISSING, the outcome being part of its eventId', () => {
    const [deleted] = statusChange(item({ status: 'DELETING' }), { status: 'DELETED' }, NOW).events;
    const [missing] = statusChange(item({ status: 'ACTIVE' }), { status: 'MISSING' }, NOW).events;

    expect(deleted).toMatchObject({ outcome: 'DELETED', status: 'DELETED' });
    expect(deleted?.eventId).toBe(
      requesterEventId(eventIdOf('DELETED', KEY, 'vpce-1', 'DELETED', NOW.toISOString()), 'default'),
    );
    expect(missing).toMatchObject({ outcome: 'MISSING', status: 'MISSING' });
  });

  it('carries Atlas’s error message of a FAILED endpoint, and keeps the rest of the result', () => {
    const { result, events } = statusChange(
      item(),
      { status: 'FAILED', atlasErrorMessage: 'quota', handBack: true },
      NOW,
    );

    expect(events[0]?.errorMessage).toBe('quota');
    expect(result).toMatchObject({ status: 'FAILED', atlasErrorMessage: 'quota', handBack: true });
  });
});

describe('handBackRequest', () => {
  it('asks under the latest requestId of the requester it acts for: the oldest hold, else the one answered last', () => {
    const requesters = { 'team-a': ['a-1', 'a-2'], 'team-b': ['b-1'] };

    expect(
      handBackRequest(item({ requesters, holds: ['team-b', 'team-a'], lastRequester: 'team-a' })).requestId,
    ).toBe('b-1');
    expect(handBackRequest(item({ requesters, lastRequester: 'team-a' })).requestId).toBe('a-2');
    expect(handBackRequest(item({ requesters })).requestId).toBe(`recreate-${eventIdOf(KEY, 'vpce-1')}`);
  });

  it('asks for a create of the item’s key under its latest requestId and profile', () => {
    expect(handBackRequest(item({ vpcRegionName: 'US_WEST_2', profile: 'prod' }))).toStrictEqual({
      requestId: 'req-2',
      action: 'create',
      groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_WEST_2',
      profile: 'prod',
    });
  });

  it('makes up a requestId from the key and endpoint when the item has none, and names no VPC region it lacks', () => {
    const request = handBackRequest(item({ requesters: {} }));

    expect(request.requestId).toBe(`recreate-${eventIdOf(KEY, 'vpce-1')}`);
    expect(request).not.toHaveProperty('vpcRegionName');
  });
});
