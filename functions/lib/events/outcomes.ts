/** The status event's detail-type and the outcomes it names: dependency-free, for the schema and the builder. */

export const STATUS_CHANGED_DETAIL_TYPE = 'Backup Private Endpoint Status Changed';

/** What happened, in the requester's words. */
export const OUTCOMES = [
  'PROVISIONED', // created by this request (201)
  'ADOPTED', // an endpoint for the key already existed and was taken over (also: the key's endpoint vanished and one other took its place)
  'DELETE_REQUESTED', // Atlas accepted the delete (204); the checker follows it until gone
  'DELETED', // the endpoint is gone
  'RELEASED', // this requester's hold on the key was released; others still hold the endpoint, which stays
  'SUPERSEDED', // a request sent after this one took effect first (supersededBy names it): this one changed nothing
  'STATUS_CHANGED', // the status checker saw a new Atlas status
  'STUCK', // past its deadline in PENDING_ACCEPTANCE or an in-progress status
  'MISSING', // an endpoint gone without a delete (drift), or a key retired because its project no longer exists (with `error`)
  'RECREATING', // the key's endpoint FAILED: it is being deleted and will be created anew
  'RECREATED', // Atlas replaced the key's endpoint (seen PENDING_RECREATION) with a new one, under a new id
  'DUPLICATE_DELETED', // an extra endpoint for the key, made by a create in doubt, was deleted
  'DUPLICATE_FOUND', // more than one endpoint for the key that this provisioner did not make: an operator decides
  'UNCLAIMED', // an endpoint appeared for a key whose create was in doubt and whose request is not running (e.g. in the DLQ)
  'DEAD_LETTERED', // sent to the DLQ; an operator must act, then replay
  'REJECTED', // invalid or unfixable; never retried
] as const;
export type Outcome = (typeof OUTCOMES)[number];
