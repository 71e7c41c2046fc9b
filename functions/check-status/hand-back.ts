/**
 * Handing back a FAILED key: a FAILED endpoint is never the answer to a create, so its key goes
 * back to the provisioner. When the queue refuses it, the check is not recorded either.
 */
import { handBackRequest } from '#events/status-change.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { type CheckerDeps, logKeys } from './run.ts';

/** Sends the key back to the provisioner, which deletes the FAILED endpoint and creates it anew. */
export async function handBack(
  deps: Pick<CheckerDeps, 'requests' | 'logger'>,
  item: LedgerItem,
): Promise<boolean> {
  if (!deps.requests) return true;
  const request = handBackRequest(item);
  try {
    await deps.requests.send(JSON.stringify(request));
    deps.logger.warn('endpoint FAILED: the key goes back to the provisioner to be created anew', {
      ...logKeys(item),
    });
    return true;
  } catch (error) {
    // Not recorded either: the next run sees the FAILED endpoint as new and hands it back then.
    deps.logger.error('could not hand the FAILED key back to the provisioner', {
      ...logKeys(item),
      error,
    });
    return false;
  }
}
