/**
 * How large a ledger item can grow: the outbox holds MAX_OUTBOX events at most (every write keeps
 * the bound), every text from Atlas is capped, and the other lists are bounded; so the largest
 * item, each field at its bound, is computed here as DynamoDB counts it, against its 400 KB limit.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE, MAX_STATUS } from '#atlas/client.ts';
import { MAX_DETAIL, MAX_ERROR_CODE } from '#atlas/http.ts';
import { ATLAS_REGIONS } from '#atlas/types.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import {
  MAX_ANSWERED,
  MAX_ENDPOINT_FAILURES_PER_DAY,
  MAX_OUTBOX,
  MAX_REQUEST_IDS,
  MAX_UNCONFIRMED_CREATES,
} from '#ledger/item.ts';
import { PARKED_ATTRIBUTES } from '#messages/attributes.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { InMemoryLedger } from '#test/support/in-memory-ledger.ts';

/** DynamoDB's item size: names and values in UTF-8, numbers at most 21 bytes, 3 bytes a map or list and 1 an element. */
function dynamoSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return 21;
  if (typeof value === 'boolean' || value === null) return 1;
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, v) => sum + 1 + dynamoSize(v), 0);
  if (typeof value === 'object')
    return (
      3 +
      Object.entries(value as object).reduce(
        (sum, [name, v]) => sum + 1 + Buffer.byteLength(name) + dynamoSize(v),
        0,
      )
    );
  return 0;
}

/** A top-level item: its attributes' names and values, without the map overhead. */
const itemSize = (item: object) =>
  Object.entries(item).reduce((sum, [name, v]) => sum + Buffer.byteLength(name) + dynamoSize(v), 0);

const DYNAMODB_ITEM_LIMIT = 400 * 1024;
const longestRegion = [...ATLAS_REGIONS].sort((a, b) => b.length - a.length)[0] ?? 'US_EAST_1';
const TIME = '2026-11-29T10:00:00.000Z';

describe('the largest ledger item', () => {
  it("stays under DynamoDB's 400 KB with a full outbox of the largest events", async () => {
    const ledger = new InMemoryLedger(() => new Date(TIME));
    const requestIds = Array.from({ length: MAX_REQUEST_IDS }, (_, i) => `${i}`.padStart(128, 'r'));
    const request: ProvisionRequest = {
      requestId: requestIds.at(-1) ?? '',
      action: 'create',
      groupId: 'a'.repeat(24),
      cloudProvider: 'AWS',
      regionName: longestRegion,
      vpcRegionName: longestRegion,
      profile: 'p'.repeat(64),
    };
    const key = naturalKey(request);
    // Every field of the detail at its largest (an error only on parked requests' events: counted anyway).
    const largest = (n: number): StatusChangedDetail => ({
      version: '1',
      eventId: n.toString(16).padStart(32, '0'),
      requester: 'r'.repeat(32),
      outcome: 'DUPLICATE_DELETED',
      requestIds,
      messageId: 'm'.repeat(PARKED_ATTRIBUTES.originalMessageId.maxChars),
      naturalKey: key,
      groupId: request.groupId,
      cloudProvider: 'AWS',
      regionName: longestRegion,
      vpcRegionName: longestRegion,
      action: 'create',
      endpointId: 'e'.repeat(24),
      previousEndpointId: 'f'.repeat(24),
      previousStatus: 'S'.repeat(MAX_STATUS),
      status: 'S'.repeat(MAX_STATUS),
      errorMessage: 'x'.repeat(MAX_ERROR_MESSAGE),
      error: {
        code: 'C'.repeat(MAX_ERROR_CODE),
        httpStatus: 599,
        detail: 'd'.repeat(PARKED_ATTRIBUTES.detail.maxChars),
      },
      statusSince: TIME,
      occurredAt: TIME,
    });
    const full = Array.from({ length: MAX_OUTBOX }, (_, i) => largest(i));
    await expect(
      ledger.settle(await ledger.claim(request, 'a', 60), 'a', {
        status: 'ACTIVE',
        request,
        statusSince: TIME,
        events: [...full, largest(MAX_OUTBOX)],
      }),
    ).rejects.toMatchObject({ name: 'EventsBackloggedError' });
    await ledger.settle(await ledger.claim(request, 'a', 60), 'a', {
      status: 'S'.repeat(MAX_STATUS) as 'ACTIVE',
      endpointId: 'e'.repeat(24),
      atlasErrorMessage: 'x'.repeat(MAX_ERROR_MESSAGE),
      request,
      statusSince: TIME,
      fields: {
        unconfirmedCreates: Array.from({ length: MAX_UNCONFIRMED_CREATES }, () => TIME),
        endpointFailures: 99,
        endpointFailedAt: Array.from({ length: MAX_ENDPOINT_FAILURES_PER_DAY }, () => TIME),
        followChain: randomUUID(),
      },
      events: full,
    });
    const stored = ledger.items.get(key);
    if (!stored) throw new Error('no item');
    // The rest at its largest: every requestId, a failure (its detail may name an errorMessage), a lease.
    // Requesters: as many as the provisioner's 4 KB environment admits (about 6; 8 counted), each
    // with its 20 requestIds, all holding the key; the last MAX_ANSWERED answers remembered.
    const names = Array.from({ length: 8 }, (_, i) => `${i}`.padStart(32, 'r'));
    Object.assign(stored, {
      requesters: Object.fromEntries(names.map((name) => [name, requestIds])),
      holds: names,
      lastRequester: names[0],
      // Request order: each requester's latest applied request, the lifecycle's first request.
      applied: Object.fromEntries(
        names.map((name) => [
          name,
          { sentAt: Date.parse(TIME), requestId: 'q'.repeat(128), action: 'create' },
        ]),
      ),
      lifecycle: {
        messageId: 'm'.repeat(100),
        sentAt: Date.parse(TIME),
        requestId: 'q'.repeat(128),
        requester: names[0],
        action: 'create',
      },
      projectGoneSince: TIME,
      answered: Object.fromEntries(
        Array.from({ length: MAX_ANSWERED }, (_, i) => [`${i}`.padStart(100, 'm'), largest(i)]),
      ),
      lastError: {
        code: 'C'.repeat(MAX_ERROR_CODE),
        httpStatus: 599,
        detail: 'd'.repeat(MAX_ERROR_MESSAGE + MAX_DETAIL + MAX_ERROR_CODE),
        at: TIME,
      },
      firstFailureAt: TIME,
      stuckAt: TIME,
      pendingCreate: { sentAt: TIME },
      recreating: true,
      lease: { owner: 'o'.repeat(128), expiresAt: Date.parse(TIME) },
      reported: Array.from({ length: 10 }, (_, i) => `${i}`.padStart(24, 'f')),
    });

    const size = itemSize(stored);

    expect(Object.keys(stored.outbox ?? {})).toHaveLength(MAX_OUTBOX);
    expect(size).toBeLessThan(DYNAMODB_ITEM_LIMIT);
    // The figure README.md gives: 362,263 bytes (354 KiB), the outbox 278,059 of them.
    expect(size).toBe(362_263);
    expect(itemSize({ outbox: stored.outbox })).toBe(278_059);
  });
});
