import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventIdOf, statusEvent } from '#events/status-event.ts';

const FIELDS = {
  eventId: 'e'.repeat(32),
  requester: 'default',
  requestIds: ['req-1'],
  occurredAt: '2026-11-29T10:00:00.000Z',
};
const REQUEST = {
  groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  action: 'create',
} as const;

describe('eventIdOf', () => {
  it('is 32 hex characters of the SHA-256 of the parts, each ended by a NUL', () => {
    const expected = createHash('sha256').update('STUCK\u00007\u0000').digest('hex').slice(0, 32);

    expect(eventIdOf('STUCK', 7)).toBe(expected);
  });

  it('is the same for the same parts, and differs when a part differs or moves across a boundary', () => {
    expect(eventIdOf('a', 'b')).toBe(eventIdOf('a', 'b'));
    expect(eventIdOf('a', 'b')).not.toBe(eventIdOf('a', 'c'));
    expect(eventIdOf('ab', 'c')).not.toBe(eventIdOf('a', 'bc'));
  });

  it('counts an absent part as an empty one, still in its place', () => {
    expect(eventIdOf('a', undefined, 'b')).toBe(eventIdOf('a', '', 'b'));
    expect(eventIdOf('a', undefined, 'b')).not.toBe(eventIdOf('a', 'b'));
  });
});

describe('statusEvent', () => {
  it('names the request’s key, project, provider, regions and action, then the fields', () => {
    expect(statusEvent('PROVISIONED', { ...REQUEST, vpcRegionName: 'US_WEST_2' }, FIELDS)).toStrictEqual({
      version: '1',
      outcome: 'PROVISIONED',
      naturalKey: '5f0c1a2b3c4d5e6f7a8b9c0d#AWS#US_EAST_1#US_WEST_2',
      groupId: '5f0c1a2b3c4d5e6f7a8b9c0d',
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_WEST_2',
      action: 'create',
      ...FIELDS,
    });
  });

  it('leaves out a VPC region the subject does not name', () => {
    const event = statusEvent('PROVISIONED', REQUEST, FIELDS);

    expect(event).not.toHaveProperty('vpcRegionName');
    expect(event.naturalKey).toBe('5f0c1a2b3c4d5e6f7a8b9c0d#AWS#US_EAST_1#US_EAST_1');
  });

  it('takes a ledger item’s key as it is', () => {
    const event = statusEvent('DELETED', { ...REQUEST, key: 'the-stored-key', action: 'delete' }, FIELDS);

    expect(event).toMatchObject({ naturalKey: 'the-stored-key', action: 'delete' });
  });

  it('carries no key fields for a body whose key could not be read', () => {
    expect(statusEvent('REJECTED', undefined, FIELDS)).toStrictEqual({
      version: '1',
      outcome: 'REJECTED',
      ...FIELDS,
    });
  });
});
