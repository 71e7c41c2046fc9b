/**
 * The ledger's outbox: status events recorded with the state they announce, written by the
 * provisioner's settle and the checker's recordCheck, and cleared once EventBridge accepted them.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import { isTracked } from '#ledger/rules.ts';
import { TRACKED } from '#ledger/schema.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';

/**
 * The outbox part of an update: entries added under the existing map, or a new map (a document
 * path cannot be set under a map that does not exist yet). `exists`: the item has an outbox map.
 */
export function outboxUpdate(events: readonly StatusChangedDetail[], exists: boolean) {
  if (events.length === 0) return { set: [], names: {}, values: {} };
  if (!exists) {
    return {
      set: ['outbox = :outbox'],
      names: {},
      values: { ':outbox': Object.fromEntries(events.map((e) => [e.eventId, e])) },
    };
  }
  return {
    set: events.map((_, i) => `outbox.#ob${i} = :ob${i}`),
    names: Object.fromEntries(events.map((e, i) => [`#ob${i}`, e.eventId])),
    values: Object.fromEntries(events.map((e, i) => [`:ob${i}`, e])),
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
