/** What becomes of a create's endpoint that Atlas no longer lists: recreated, adopted, waited for, or gone. */
import { describe, expect, it } from 'vitest';
import type { AtlasEndpoint } from '#atlas/types.ts';
import { StatusChangedDetailSchema } from '#events/schema.ts';
import { successorChange, successorOf } from '#events/status-change.ts';
import type { LedgerItem } from '#ledger/item.ts';

const NOW = new Date('2026-12-06T10:00:00.000Z');
const OLD = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const NEW = 'bbbbbbbbbbbbbbbbbbbbbbbb';

const item = (fields: Partial<LedgerItem> = {}): LedgerItem => ({
  key: 'g#AWS#US_EAST_1#US_EAST_1',
  groupId: '0123456789abcdef01234567',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  profile: 'default',
  action: 'create',
  requesters: { default: ['svc:1', 'svc:2'] },
  status: 'PENDING_RECREATION',
  statusSince: '2026-12-06T09:00:00.000Z',
  endpointId: OLD,
  checkedAt: '2026-12-06T09:00:00.000Z',
  createdAt: '2026-12-06T08:00:00.000Z',
  updatedAt: '2026-12-06T09:00:00.000Z',
  ...fields,
});
const endpoint = (id: string, status = 'INITIATING', errorMessage?: string): AtlasEndpoint => ({
  id,
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  vpcRegionName: 'US_EAST_1',
  status,
  ...(errorMessage !== undefined && { errorMessage }),
});

describe('successorOf', () => {
  it('is the one new endpoint of a key seen PENDING_RECREATION', () => {
    expect(successorOf(item(), [endpoint(NEW)])).toEqual({ kind: 'recreated', endpoint: endpoint(NEW) });
  });

  it('adopts the one other endpoint of a key whose recreation was not seen', () => {
    for (const status of ['ACTIVE', 'INITIATING', 'PENDING_ACCEPTANCE'] as const) {
      expect(successorOf(item({ status }), [endpoint(NEW, 'ACTIVE')])).toEqual({
        kind: 'adopted',
        endpoint: endpoint(NEW, 'ACTIVE'),
      });
    }
  });

  it('waits for the successor of a recreation that is not listed yet', () => {
    expect(successorOf(item(), [])).toEqual({ kind: 'waiting' });
  });

  it('is gone when nothing took its place outside a recreation, or two endpoints did', () => {
    expect(successorOf(item({ status: 'ACTIVE' }), [])).toEqual({ kind: 'gone' });
    expect(successorOf(item(), [endpoint(NEW), endpoint('cccccccccccccccccccccccc')])).toEqual({
      kind: 'gone',
    });
    expect(
      successorOf(item({ status: 'ACTIVE' }), [endpoint(NEW), endpoint('cccccccccccccccccccccccc')]),
    ).toEqual({
      kind: 'gone',
    });
  });

  it('never gives a delete or a DELETING endpoint a successor', () => {
    expect(successorOf(item({ action: 'delete' }), [endpoint(NEW)])).toEqual({ kind: 'gone' });
    expect(successorOf(item({ status: 'DELETING' }), [endpoint(NEW)])).toEqual({ kind: 'gone' });
  });
});

describe('successorChange', () => {
  it('records the new id and announces one RECREATED event naming the old and the new id', () => {
    const {
      result,
      events: [event],
    } = successorChange(item(), { kind: 'recreated', endpoint: endpoint(NEW) }, NOW);
    expect(result).toEqual({
      status: 'INITIATING',
      statusSince: NOW.toISOString(),
      fields: { endpointId: NEW },
    });
    expect(StatusChangedDetailSchema.parse(event)).toEqual(event);
    expect(event).toMatchObject({
      outcome: 'RECREATED',
      endpointId: NEW,
      previousEndpointId: OLD,
      previousStatus: 'PENDING_RECREATION',
      status: 'INITIATING',
      requestIds: ['svc:1', 'svc:2'],
      naturalKey: item().key,
      statusSince: NOW.toISOString(),
    });
  });

  it('announces an adoption as ADOPTED, keeping the recorded statusSince when the status is the same', () => {
    const {
      result,
      events: [event],
    } = successorChange(
      item({ status: 'ACTIVE' }),
      { kind: 'adopted', endpoint: endpoint(NEW, 'ACTIVE') },
      NOW,
    );
    expect(result.statusSince).toBe(item().statusSince);
    expect(event).toMatchObject({
      outcome: 'ADOPTED',
      endpointId: NEW,
      previousEndpointId: OLD,
      status: 'ACTIVE',
    });
    expect(event?.statusSince).toBe(item().statusSince);
  });

  it('gives one fact one eventId, and another successor another', () => {
    const once = successorChange(item(), { kind: 'recreated', endpoint: endpoint(NEW) }, NOW).events[0]
      ?.eventId;
    const again = successorChange(
      item(),
      { kind: 'recreated', endpoint: endpoint(NEW, 'ACTIVE') },
      new Date(),
    ).events[0]?.eventId;
    const other = successorChange(
      item(),
      { kind: 'recreated', endpoint: endpoint('cccccccccccccccccccccccc') },
      NOW,
    ).events[0]?.eventId;
    expect(again).toBe(once);
    expect(other).not.toBe(once);
  });

  it('hands a FAILED successor back to the provisioner with Atlas message', () => {
    const {
      result,
      events: [event],
    } = successorChange(
      item(),
      { kind: 'recreated', endpoint: endpoint(NEW, 'FAILED', 'quota exceeded') },
      NOW,
    );
    expect(result).toMatchObject({ status: 'FAILED', handBack: true, atlasErrorMessage: 'quota exceeded' });
    expect(event?.errorMessage).toBe('quota exceeded');
  });
});
