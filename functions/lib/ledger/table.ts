/**
 * The ledger table as each group of writes reaches it (client, name, clock), and how an item
 * read from it looks.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import type { LedgerItem } from '#ledger/item.ts';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';

/** What the ledger's writes are given: the table and the clock that stamps them. */
export interface TableHandle {
  client: DynamoDBDocumentClient;
  tableName: string;
  now: () => Date;
}

/**
 * An item as the ledger hands it out. Items written before requesters had names keep their
 * requestIds in `requestIds` (a bounded list, or before that a string set): they read as the
 * DEFAULT_REQUESTER's list, until a settle writes `requesters` and removes `requestIds`.
 */
export const fromRaw = (raw: Record<string, unknown>): LedgerItem => {
  const { requestIds, requesters, outbox, ...rest } = raw as Omit<LedgerItem, 'requesters' | 'outbox'> & {
    requestIds?: Iterable<string>;
    requesters?: Record<string, string[]>;
    outbox?: Record<string, StatusChangedDetail>;
  };
  const pending = outbox && Object.keys(outbox).length > 0 ? { outbox } : {};
  const legacy = requestIds === undefined ? [] : [...requestIds];
  const lists = { ...requesters };
  if (legacy.length > 0 && lists[DEFAULT_REQUESTER] === undefined) lists[DEFAULT_REQUESTER] = legacy;
  return { ...rest, ...pending, requesters: lists } as LedgerItem;
};
