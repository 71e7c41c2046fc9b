/**
 * What the ledger's claim and settle UpdateCommands leave in the table, computed from their
 * inputs, for in-memory stand-ins (unit fixtures, the bench). The conditions themselves are
 * proven against DynamoDB in moto (test/integration/ledger.moto.test.ts).
 */
import { TRACKED } from '#lib/ledger.ts';

export type StoredItem = Record<string, unknown>;
type Values = Record<string, unknown>;

/** Ledger.claim's write: the item as ReturnValues ALL_NEW gives it back. */
export function claimedItem(stored: StoredItem | undefined, key: string, values: Values): StoredItem {
  return {
    createdAt: values[':now'],
    status: values[':requested'],
    statusSince: values[':now'],
    checkedAt: values[':never'],
    ...stored,
    key,
    groupId: values[':g'],
    cloudProvider: values[':c'],
    regionName: values[':r'],
    ...(values[':v'] !== undefined && { vpcRegionName: values[':v'] }),
    profile: values[':p'],
    action: values[':a'],
    requestIds: new Set([...((stored?.requestIds as Set<string>) ?? []), ...(values[':rid'] as Set<string>)]),
    lease: values[':lease'],
    updatedAt: values[':now'],
  };
}

/** Ledger.settle's write: the new status, the lease and any failure removed. */
export function settledItem(stored: StoredItem, values: Values): StoredItem {
  const { lease: _, lastError, firstFailureAt, tracked, atlasErrorMessage, ...rest } = stored;
  return {
    ...rest,
    status: values[':status'],
    updatedAt: values[':now'],
    statusSince: stored.status === values[':status'] ? stored.statusSince : values[':now'],
    ...(values[':eid'] !== undefined && { endpointId: values[':eid'] }),
    ...(values[':msg'] !== undefined && { atlasErrorMessage: values[':msg'] }),
    ...(values[':tracked'] !== undefined && { tracked: TRACKED }),
  };
}
