import { describe, expect, it } from 'vitest';
import { goneStatus, handBackRequest, itemDetail, SETTLED, statusChange } from '#events/status-change.ts';
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
  requestIds: ['req-1', 'req-2'],
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

describe('itemDetail', () => {
  const extra = { eventId: 'e'.repeat(32), status: 'ACTIVE', occurredAt: NOW.toISOString() };

  it('carries the item’s key, its requestIds and its endpoint', () => {
    expect(itemDetail('STATUS_CHANGED', item(), extra)).toStrictEqual({
      version: '1',
      outcome: 'STATUS_CHANGED',
      naturalKey: KEY,
      groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      action: 'create',
      requestIds: ['req-1', 'req-2'],
      endpointId: 'vpce-1',
      ...extra,
    });
  });

  it('names no endpoint for an item without one, and lets the extra fields override', () => {
    const detail = itemDetail('STUCK', item({ endpointId: undefined }), { ...extra, requestIds: ['req-9'] });

    expect(detail).not.toHaveProperty('endpointId');
    expect(detail.requestIds).toEqual(['req-9']);
  });
});

describe('statusChange', () => {
  it('records the new status since now, and announces it as STATUS_CHANGED with the previous one', () => {
    const { result, event } = statusChange(item(), { status: 'PENDING_ACCEPTANCE' }, NOW);

    expect(result).toStrictEqual({ status: 'PENDING_ACCEPTANCE', statusSince: NOW.toISOString() });
    expect(event).toMatchObject({
      outcome: 'STATUS_CHANGED',
      eventId: eventIdOf('STATUS_CHANGED', KEY, 'vpce-1', 'PENDING_ACCEPTANCE', NOW.toISOString()),
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
    const deleted = statusChange(item({ status: 'DELETING' }), { status: 'DELETED' }, NOW).event;
    const missing = statusChange(item({ status: 'ACTIVE' }), { status: 'MISSING' }, NOW).event;

    expect(deleted).toMatchObject({ outcome: 'DELETED', status: 'DELETED' });
    expect(deleted.eventId).toBe(eventIdOf('DELETED', KEY, 'vpce-1', 'DELETED', NOW.toISOString()));
    expect(missing).toMatchObject({ outcome: 'MISSING', status: 'MISSING' });
  });

  it('carries Atlas’s error message of a FAILED endpoint, and keeps the rest of the result', () => {
    const { result, event } = statusChange(
      item(),
      { status: 'FAILED', atlasErrorMessage: 'quota', handBack: true },
      NOW,
    );

    expect(event.errorMessage).toBe('quota');
    expect(result).toMatchObject({ status: 'FAILED', atlasErrorMessage: 'quota', handBack: true });
  });
});

describe('handBackRequest', () => {
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
    const request = handBackRequest(item({ requestIds: [] }));

    expect(request.requestId).toBe(`recreate-${eventIdOf(KEY, 'vpce-1')}`);
    expect(request).not.toHaveProperty('vpcRegionName');
  });
});
