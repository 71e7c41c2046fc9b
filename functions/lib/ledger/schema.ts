/**
 * The ledger table's schema: declared by the stack (infra/constructs/ledger.ts), created the same
 * way in the emulators (test/support/ledger-table.ts) and queried by the Ledger. Dependency-free,
 * so `cdk synth` imports it without loading the DynamoDB SDK; the attribute names are checked
 * against the item type.
 */
import { type LedgerItem, TRACKED } from '#ledger/item.ts';

export { TRACKED };

/** Partition key: the natural key (project, provider, region, VPC region). */
export const LEDGER_KEY = 'key' satisfies keyof LedgerItem;

/** The sparse index the status checker reads: items with `tracked` set, oldest check first. */
export const CHECK_INDEX = 'byCheck';
export const CHECK_INDEX_PARTITION = 'tracked' satisfies keyof LedgerItem;
export const CHECK_INDEX_SORT = 'checkedAt' satisfies keyof LedgerItem;
