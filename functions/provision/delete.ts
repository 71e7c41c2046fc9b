/** The delete action: the key's endpoint deleted, never while a create in doubt may still land. */
import type { LeaseFields, LedgerItem } from '#ledger/ledger.ts';
import { withoutHold } from '#ledger/rules.ts';
import { CreateInDoubtError, isEndpointNotFound } from '#lib/errors.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import { bounded, GONE, listKey } from './attempt.ts';
import type { AtlasResult, Attempt, ProvisionContext } from './types.ts';

/**
 * Releases the requester's hold on the key, and deletes the key's endpoint when no other
 * requester holds it (or an operator asks, whatever the holds: a forced delete). An endpoint
 * already gone (Atlas says it does not exist, and none is listed for the key) counts as deleted;
 * any other 404 goes to an operator.
 */
export async function remove(
  ctx: ProvisionContext,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
): Promise<AtlasResult> {
  const requester = at.source.requester;
  const others = requester ? withoutHold(claimed, requester.name) : [];
  if (others.length > 0 && requester?.operator !== true) {
    // Others still hold it: the endpoint stays, and the answer says how many hold it, never who.
    return {
      outcome: 'RELEASED',
      status: claimed.status,
      ...(claimed.endpointId !== undefined && { endpointId: claimed.endpointId }),
      ...(claimed.atlasErrorMessage !== undefined && { atlasErrorMessage: claimed.atlasErrorMessage }),
      holds: others,
      answer: { holdsRemaining: others.length },
    };
  }
  const deleted = await removeEndpoint(ctx, at, request, claimed);
  // The endpoint goes: nobody holds the key any more, and the answer says whose holds were overridden.
  return { ...deleted, holds: [], ...(others.length > 0 && { answer: { forced: true } }) };
}

/** Deletes the key's endpoint, whoever holds it. */
async function removeEndpoint(
  ctx: ProvisionContext,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
): Promise<AtlasResult> {
  if (claimed.pendingCreate) {
    // A create in doubt may still land: delete only what a listing after the settle period shows.
    const readyAt = Date.parse(claimed.pendingCreate.sentAt) + ctx.createSettleSeconds * 1000;
    const waitSeconds = Math.ceil((readyAt - ctx.now().getTime()) / 1000);
    if (waitSeconds > 0) throw new CreateInDoubtError(claimed.key, waitSeconds);
  }
  if (claimed.endpointId !== undefined && claimed.status === 'DELETING' && !claimed.recreating) {
    return { outcome: 'DELETE_REQUESTED', endpointId: claimed.endpointId, status: 'DELETING' };
  }
  const settled = !claimed.pendingCreate && !claimed.recreating;
  const known =
    settled && claimed.endpointId !== undefined && !GONE.has(claimed.status) ? claimed.endpointId : undefined;
  const fields: Partial<LeaseFields> = { recreating: undefined, endpointFailures: undefined };
  return ctx.atlas.withClient(request.profile, async (unbounded): Promise<AtlasResult> => {
    const client = bounded(ctx, unbounded, at);
    const deleteListed = async (): Promise<AtlasResult> => {
      const listed = await listKey(client, request);
      const found = listed.find((e) => e.status !== 'DELETING') ?? listed[0];
      if (!found) return { outcome: 'DELETED', status: 'DELETED', fields };
      if (found.status === 'DELETING')
        return { outcome: 'DELETE_REQUESTED', endpointId: found.id, status: 'DELETING', fields };
      return deleteId(found.id, false);
    };
    // A known endpoint already gone may have been recreated by Atlas under a new id: list the key.
    const deleteId = async (endpointId: string, listIfGone: boolean): Promise<AtlasResult> => {
      try {
        await client.deleteEndpoint(request.groupId, request.cloudProvider, endpointId);
        return { outcome: 'DELETE_REQUESTED', endpointId, status: 'DELETING', fields };
      } catch (error) {
        if (!isEndpointNotFound(error)) throw error;
        return listIfGone ? deleteListed() : { outcome: 'DELETED', status: 'DELETED', fields };
      }
    };
    return known === undefined ? deleteListed() : deleteId(known, true);
  });
}
