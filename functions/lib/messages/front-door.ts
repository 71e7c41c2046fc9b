/**
 * The EventBridge front door: an event of this detail-type, from an accepted source, becomes a
 * request-queue message whose body is the event's `detail` (a v1 request). Shared by the stack's
 * rule, the local run and the requester library.
 */
export const REQUESTED_DETAIL_TYPE = 'Backup Private Endpoint Requested';

/** What the rule's target delivers to the request queue: the event's detail, the request body. */
export const REQUEST_EVENT_INPUT_PATH = '$.detail';

/** The front door rule's event pattern: each source exact, or a prefix when it ends in `*`. */
export function requestEventPattern(sources: readonly string[]) {
  return {
    source: sources.map((source) => (source.endsWith('*') ? { prefix: source.slice(0, -1) } : source)),
    'detail-type': [REQUESTED_DETAIL_TYPE],
  };
}
