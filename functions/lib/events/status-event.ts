/**
 * The one event a requester subscribes to: every outcome and every status change of a request.
 * The functions build its detail here; its zod schema lives apart (schema.ts), since
 * no function parses an event: a schema built at import is cold-start time for nothing.
 */
import { createHash } from 'node:crypto';
import type { Outcome } from '#events/outcomes.ts';
import type { StatusChangedDetail } from '#events/schema.ts';
import type { LedgerItem } from '#ledger/item.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';

export { OUTCOMES, type Outcome, STATUS_CHANGED_DETAIL_TYPE } from '#events/outcomes.ts';

/** The detail every status event carries; its schema is in schema.ts. */
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
 * status checker, for one requester (`fields.requester`, with its requestIds). `about` is absent
 * only for a rejected body whose key could not be read.
 */
export function statusEvent(
  outcome: Outcome,
  about: EventSubject | undefined,
  fields: Pick<StatusChangedDetail, 'eventId' | 'requester' | 'requestIds' | 'occurredAt'> &
    Partial<StatusChangedDetail>,
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
