/**
 * Answers that have no key to wait in: the rejection of a body whose key could not be read, or
 * any answer of a request already parked, when EventBridge refused it. Each is kept as an item of
 * its own (`answer#<eventId>`) on the check index, with the answer in its outbox, until the
 * status checker's sweep has sent it; then the item is deleted. The request itself was parked
 * first, with its reason, whatever EventBridge did.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import { NEVER_CHECKED, TRACKED } from '#ledger/item.ts';
import type { TableHandle } from '#ledger/table.ts';

export const ANSWER_KEY_PREFIX = 'answer#';

/** Whether a ledger key is a kept answer's, not a natural key. */
export const isAnswerKey = (key: string): boolean => key.startsWith(ANSWER_KEY_PREFIX);

/** The item that keeps one answer until it is sent: no endpoint, no lifecycle, only its outbox. */
export function answerItem(event: StatusChangedDetail, now: Date) {
  const iso = now.toISOString();
  return {
    key: `${ANSWER_KEY_PREFIX}${event.eventId}`,
    status: 'DELETED',
    statusSince: iso,
    action: event.action ?? 'create',
    requesters: {},
    tracked: TRACKED,
    checkedAt: NEVER_CHECKED,
    createdAt: iso,
    updatedAt: iso,
    outbox: { [event.eventId]: event },
  };
}

/** Keeps an answer EventBridge refused; keeping the same answer twice keeps it once. */
export async function keepAnswer(table: TableHandle, event: StatusChangedDetail): Promise<void> {
  await table.client
    .send(
      new PutCommand({
        TableName: table.tableName,
        Item: answerItem(event, table.now()),
        ConditionExpression: 'attribute_not_exists(#key)',
        ExpressionAttributeNames: { '#key': 'key' },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

/** Deletes a kept answer once it was sent (its outbox emptied); one still pending stays. */
export async function forgetAnswer(table: TableHandle, key: string): Promise<void> {
  await table.client
    .send(
      new DeleteCommand({
        TableName: table.tableName,
        Key: { key },
        ConditionExpression: 'attribute_not_exists(outbox) OR size(outbox) = :zero',
        ExpressionAttributeValues: { ':zero': 0 },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}
