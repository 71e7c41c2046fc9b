import { describe, expect, it } from 'vitest';
import {
  REQUEST_EVENT_INPUT_PATH,
  REQUESTED_DETAIL_TYPE,
  requestEventPattern,
} from '#messages/front-door.ts';

describe('requestEventPattern', () => {
  it('matches each source exactly, or by prefix when it ends in *, and only the request detail-type', () => {
    expect(requestEventPattern(['billing.service', 'team.*'])).toEqual({
      source: ['billing.service', { prefix: 'team.' }],
      'detail-type': ['Backup Private Endpoint Requested'],
    });
    expect(REQUESTED_DETAIL_TYPE).toBe('Backup Private Endpoint Requested');
  });

  it('keeps a * anywhere but at the end as part of an exact source', () => {
    expect(requestEventPattern(['*.service']).source).toEqual(['*.service']);
  });
});

describe('REQUEST_EVENT_INPUT_PATH', () => {
  it('selects the event’s detail, which is the request body', () => {
    const event = { source: 'billing.service', detail: { requestId: 'req-1' } };
    const [root, ...fields] = REQUEST_EVENT_INPUT_PATH.split('.');

    const selected = fields.reduce<unknown>(
      (value, field) => (value as Record<string, unknown>)[field],
      event,
    );

    expect(root).toBe('$');
    expect(selected).toBe(event.detail);
  });
});
