/**
 * The ledger's outbox: status events recorded with the state they announce, written by the
 * provisioner's settle and the checker's (and the follow-ups') recordCheck, each keeping the one
 * bound MAX_OUTBOX, and cleared once EventBridge accepted them.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import { MAX_OUTBOX } from '#ledger/item.ts';
import { isTracked } from '#ledger/rules.ts';
import { TRACKED } from '#ledger/schema.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';

/**
 * The outbox part of an update: entries added under the existing map (and `replaced` pending ones
 * removed, supersededBy), or a new map (a document path cannot be set under a map that does not
 * exist yet). `exists`: the item has an outbox map with events. The bound, MAX_OUTBOX, as
 * outboxHasRoom states it: `fits` is false when the events cannot fit even an empty outbox, and
 * `condition` holds when the stored outbox has room (a replaced event is credited only while it
 * is still there: EventBridge may have taken it since the item was read).
 */
export function outboxUpdate(
  events: readonly StatusChangedDetail[],
  exists: boolean,
  replaced: readonly string[] = [],
) {
  const none = { set: [], remove: [], names: {}, values: {}, condition: undefined, fits: true };
  if (events.length === 0) return none;
  if (!exists) {
    return {
      ...none,
      set: ['outbox = :outbox'],
      values: { ':outbox': Object.fromEntries(events.map((e) => [e.eventId, e])) },
      fits: events.length <= MAX_OUTBOX,
    };
  }
  const present = replaced.map((_, i) => `attribute_exists(outbox.#rm${i})`);
  return {
    set: events.map((_, i) => `outbox.#ob${i} = :ob${i}`),
    remove: replaced.map((_, i) => `outbox.#rm${i}`),
    names: {
      ...Object.fromEntries(events.map((e, i) => [`#ob${i}`, e.eventId])),
      ...Object.fromEntries(replaced.map((id, i) => [`#rm${i}`, id])),
    },
    values: {
      ...Object.fromEntries(events.map((e, i) => [`:ob${i}`, e])),
      ':obRoom': MAX_OUTBOX - events.length,
      ...(replaced.length > 0 && { ':obCredit': MAX_OUTBOX - events.length + replaced.length }),
    },
    condition:
      replaced.length === 0
        ? 'size(outbox) <= :obRoom'
        : `(size(outbox) <= :obRoom OR (size(outbox) <= :obCredit AND ${present.join(' AND ')}))`,
    fits: events.length <= MAX_OUTBOX,
  };
}

/**
 * Removes events from the outbox once EventBridge accepted them. An item the checker no longer
 * follows and whose outbox is now empty leaves the check index.
 */
export async function clearOutbox(
  table: TableHandle,
  key: string,
  eventIds: readonly string[],
): Promise<void> {
  if (eventIds.length === 0) return;
  const names = Object.fromEntries(eventIds.map((id, i) => [`#ob${i}`, id]));
  const out = await table.client
    .send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { key },
        UpdateExpression: `REMOVE ${eventIds.map((_, i) => `outbox.#ob${i}`).join(', ')}`,
        ConditionExpression: 'attribute_exists(outbox)',
        ExpressionAttributeNames: names,
        ReturnValues: 'ALL_NEW',
      }),
    )
    .catch((error: unknown) => {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    });
  const item = out?.Attributes ? fromRaw(out.Attributes) : undefined;
  if (!item || item.tracked !== TRACKED || isTracked(item)) return;
  await table.client
    .send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { key },
        UpdateExpression: 'REMOVE tracked',
        // Only if nothing was announced or followed since.
        ConditionExpression: '#status = :status AND size(outbox) = :zero',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': item.status, ':zero': 0 },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}
