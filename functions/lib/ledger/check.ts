/**
 * The status checker's reads and writes: the items it visits, least recently checked first, and
 * what a check found, written only while no provisioner holds or moved the key.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type CheckResult, type LedgerItem, type LedgerStatus, UNTRACKED } from '#ledger/item.ts';
import { outboxUpdate } from '#ledger/outbox.ts';
import { supersededBy } from '#ledger/rules.ts';
import { CHECK_INDEX, TRACKED } from '#ledger/schema.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';

/** One page of items the checker visits, least recently checked first. */
export async function listTracked(
  table: TableHandle,
  options: { limit: number; startKey?: Record<string, unknown> },
) {
  const out = await table.client.send(
    new QueryCommand({
      TableName: table.tableName,
      IndexName: CHECK_INDEX,
      KeyConditionExpression: 'tracked = :t',
      ExpressionAttributeValues: { ':t': TRACKED },
      ScanIndexForward: true,
      Limit: options.limit,
      ...(options.startKey && { ExclusiveStartKey: options.startKey }),
    }),
  );
  return { items: (out.Items ?? []).map(fromRaw), nextKey: out.LastEvaluatedKey };
}

/**
 * Records a status check and the events that announce it (outbox), in place of the pending
 * statuses they supersede (rules.ts supersededBy). Applies only while no provisioner holds the
 * key, the status is still `expectedStatus`, (when given) the item was not written since
 * `readUpdatedAt`, and the outbox has room for the events (MAX_OUTBOX); returns undefined when
 * it does not (checked again later). `pending`: the outbox as the item was read.
 */
export async function recordCheck(
  table: TableHandle,
  key: string,
  expectedStatus: LedgerStatus,
  result: CheckResult,
  pending: LedgerItem['outbox'],
  readUpdatedAt?: string,
): Promise<LedgerItem | undefined> {
  const now = table.now();
  const iso = now.toISOString();
  const changed = result.status !== expectedStatus;
  const events = result.events ?? [];
  const outboxExists = Object.keys(pending ?? {}).length > 0;
  const outbox = outboxUpdate(events, outboxExists, supersededBy(pending, events));
  if (!outbox.fits) return undefined;
  const tracked = !UNTRACKED.has(result.status) || events.length > 0 || outboxExists;
  const set = ['checkedAt = :now', 'updatedAt = :now', '#status = :status'];
  const remove: string[] = [];
  if (changed) set.push('statusSince = :since');
  if (changed) remove.push('stuckAt');
  if (result.stuck && !changed) set.push('stuckAt = if_not_exists(stuckAt, :now)');
  if (result.atlasErrorMessage !== undefined) set.push('atlasErrorMessage = :msg');
  else remove.push('atlasErrorMessage');
  if (!tracked) remove.push('tracked');
  else set.push('tracked = :tracked');
  // The endpoint is gone: nobody holds the key any more.
  if (result.status === 'DELETED' || result.status === 'MISSING') remove.push('endpointId', 'holds');
  // An endpoint ACTIVE for a while may still fail: the lifecycle's FAILED count stands (create.ts).
  const fieldValues: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(result.fields ?? {})) {
    if (value === undefined || (Array.isArray(value) && value.length === 0)) remove.push(name);
    else {
      set.push(`${name} = :${name}`);
      fieldValues[`:${name}`] = value;
    }
  }
  set.push(...outbox.set);
  remove.push(...outbox.remove);
  try {
    const out = await table.client.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { key },
        UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
        // A new outbox map must not replace events a provisioner recorded since the item was read.
        ConditionExpression:
          'attribute_exists(#key) AND #status = :expected AND (attribute_not_exists(lease) OR lease.expiresAt < :nowMs)' +
          (events.length > 0 && !outboxExists
            ? ' AND (attribute_not_exists(outbox) OR size(outbox) = :zero)'
            : '') +
          (outbox.condition ? ` AND ${outbox.condition}` : '') +
          // A provisioner that answered a request since the item was read (an adoption adds its
          // requestId) must hear of the change too: the next run announces it to all of them.
          (readUpdatedAt !== undefined ? ' AND updatedAt = :read' : ''),
        ExpressionAttributeNames: { '#key': 'key', '#status': 'status', ...outbox.names },
        ExpressionAttributeValues: {
          ':now': iso,
          ':nowMs': now.getTime(),
          ':status': result.status,
          ':expected': expectedStatus,
          ...(tracked && { ':tracked': TRACKED }),
          ...(changed && { ':since': result.statusSince ?? iso }),
          ...(result.atlasErrorMessage !== undefined && { ':msg': result.atlasErrorMessage }),
          ...fieldValues,
          ...(events.length > 0 && !outboxExists && { ':zero': 0 }),
          ...(readUpdatedAt !== undefined && { ':read': readUpdatedAt }),
          ...outbox.values,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return fromRaw(out.Attributes ?? {});
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/**
 * Proves the item unchanged since it was read (`readUpdatedAt`) and held by no provisioner, before
 * the checker acts in Atlas on that read: a conditional write that also marks the item written, so
 * a provisioner that claims the key afterwards moves it on again. Takes no lease. Returns the new
 * `updatedAt` (what the check then records against), or undefined when the item moved on.
 */
export async function confirmUnchanged(
  table: TableHandle,
  key: string,
  readUpdatedAt: string,
): Promise<string | undefined> {
  const now = table.now();
  const iso = now.toISOString();
  try {
    await table.client.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { key },
        UpdateExpression: 'SET updatedAt = :now',
        ConditionExpression:
          'attribute_exists(#key) AND updatedAt = :read AND (attribute_not_exists(lease) OR lease.expiresAt < :nowMs)',
        ExpressionAttributeNames: { '#key': 'key' },
        ExpressionAttributeValues: { ':now': iso, ':read': readUpdatedAt, ':nowMs': now.getTime() },
      }),
    );
    return iso;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}
