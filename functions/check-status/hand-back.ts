/**
 * What the checker hands to the provisioner through the continuation queue: a FAILED key (a FAILED
 * endpoint is never the answer to a create, so its key goes back to be created anew; when the
 * queue refuses it, the check is not recorded either), and a key Atlas is recreating, to follow
 * closely with the provisioner's follow-ups until its new endpoint settles.
 */
import { handBackRequest } from '#events/status-change.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { actingRequester } from '#ledger/rules.ts';

import { type CheckerDeps, logKeys } from './run.ts';

/** Sends the key back to the provisioner, which deletes the FAILED endpoint and creates it anew. */
export async function handBack(
  deps: Pick<CheckerDeps, 'requests' | 'logger'>,
  item: LedgerItem,
): Promise<boolean> {
  if (!deps.requests) return true;
  const request = handBackRequest(item);
  try {
    await deps.requests.send(JSON.stringify(request), {
      requester: actingRequester(item),
      // It continues the key's current lifecycle only: stale once a newer request changed it.
      ...(item.lifecycle !== undefined && { lifecycle: item.lifecycle.messageId }),
    });
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

/**
 * Starts the follow-ups of a key whose endpoint Atlas is recreating (or has replaced), as the
 * provisioner does after a create. A refused send is logged: the sweep still follows the key.
 */
export async function followClosely(
  deps: Pick<CheckerDeps, 'requests' | 'logger' | 'followUpFirstSeconds'>,
  item: LedgerItem,
  endpointId: string,
  chain?: string,
): Promise<void> {
  if (!deps.requests || deps.followUpFirstSeconds === undefined) return;
  try {
    await deps.requests.send(JSON.stringify(handBackRequest(item)), {
      requester: actingRequester(item),
      delaySeconds: deps.followUpFirstSeconds,
      followUp: { number: 1, endpointId, ...(chain !== undefined && { chain }) },
      ...(item.lifecycle !== undefined && { lifecycle: item.lifecycle.messageId }),
    });
  } catch (error) {
    deps.logger.warn('could not start the follow-ups of a recreated endpoint; the sweep follows it', {
      ...logKeys(item),
      error,
    });
  }
}
