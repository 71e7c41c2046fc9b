/**
 * The ledger table as each group of writes reaches it (client, name, clock), and how an item
 * read from it looks.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import type { LedgerItem } from '#ledger/item.ts';

/** What the ledger's writes are given: the table and the clock that stamps them. */
export interface TableHandle {
  client: DynamoDBDocumentClient;
  tableName: string;
  now: () => Date;
}

/** requestIds was a string set before it was a bounded list: both read the same. */
export const fromRaw = (raw: Record<string, unknown>): LedgerItem => {
  const { requestIds, outbox, ...rest } = raw as Omit<LedgerItem, 'requestIds' | 'outbox'> & {
    requestIds?: Iterable<string>;
    outbox?: Record<string, StatusChangedDetail>;
  };
  const pending = outbox && Object.keys(outbox).length > 0 ? { outbox } : {};
  return { ...rest, ...pending, requestIds: [...(requestIds ?? [])] } as LedgerItem;
};
