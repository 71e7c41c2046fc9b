/**
 * The one event a requester subscribes to: every outcome and every status change of a request.
 * The functions build its detail here; its zod schema lives apart (status-event-schema.ts), since
 * no function parses an event: a schema built at import is cold-start time for nothing.
 */
import { createHash } from 'node:crypto';
import type { LedgerItem } from '#lib/ledger.ts';
import { naturalKey, type ProvisionRequest } from '#lib/request.ts';
import type { StatusChangedDetail } from '#lib/status-event-schema.ts';

export const STATUS_CHANGED_DETAIL_TYPE = 'Backup Private Endpoint Status Changed';

/** What happened, in the requester's words. */
export const OUTCOMES = [
  'PROVISIONED', // created by this request (201)
  'ADOPTED', // an endpoint for the key already existed and was taken over
  'DELETE_REQUESTED', // Atlas accepted the delete (204); the checker follows it until gone
  'DELETED', // the endpoint is gone
  'STATUS_CHANGED', // the status checker saw a new Atlas status
  'STUCK', // past its deadline in PENDING_ACCEPTANCE or an in-progress status
  'MISSING', // an endpoint that was ACTIVE answered 404 (drift)
  'RECREATING', // the key's endpoint FAILED: it is being deleted and will be created anew
  'DUPLICATE_DELETED', // an extra endpoint for the key, made by a create in doubt, was deleted
  'DUPLICATE_FOUND', // more than one endpoint for the key that this provisioner did not make: an operator decides
  'UNCLAIMED', // an endpoint appeared for a key whose create was in doubt and whose request is not running (e.g. in the DLQ)
  'DEAD_LETTERED', // sent to the DLQ; an operator must act, then replay
  'REJECTED', // invalid or unfixable; never retried
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The detail every status event carries; its schema is in status-event-schema.ts. */
export type { StatusChangedDetail };

/** An eventId from the parts that make a fact what it is (absent parts count as empty). */
export function eventIdOf(...parts: Array<string | number | undefined>): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part ?? ''}\u0000`);
  return hash.digest('hex').slice(0, 32);
}

/** What an event is about: the request it answers, or the ledger item of the key. */
export type EventSubject =
  | Pick<ProvisionRequest, 'groupId' | 'cloudProvider' | 'regionName' | 'vpcRegionName' | 'action'>
  | Pick<LedgerItem, 'key' | 'groupId' | 'cloudProvider' | 'regionName' | 'vpcRegionName' | 'action'>;

/**
 * A status event: the one builder of the detail for the provisioner, its follow-ups and the
 * status checker. `about` is absent only for a rejected body whose key could not be read.
 */
export function statusEvent(
  outcome: Outcome,
  about: EventSubject | undefined,
  fields: Pick<StatusChangedDetail, 'eventId' | 'requestIds' | 'occurredAt'> & Partial<StatusChangedDetail>,
): StatusChangedDetail {
  return {
    version: '1',
    outcome,
    ...(about && {
      naturalKey: 'key' in about ? about.key : naturalKey(about as ProvisionRequest),
      groupId: about.groupId,
      cloudProvider: about.cloudProvider,
      regionName: about.regionName,
      ...(about.vpcRegionName !== undefined && { vpcRegionName: about.vpcRegionName }),
      action: about.action,
    }),
    ...fields,
  };
}
