/**
 * Names shared by the functions (which emit them) and the stack (which graphs and alarms on them).
 * Dependency-free, so `cdk synth` imports them without loading Powertools or an SDK.
 */
export const METRICS_NAMESPACE = 'AtlasBackupPrivateEndpoints';
export const SERVICE = { provisioner: 'provisioner', statusChecker: 'status-checker' } as const;

export const METRIC = {
  /** Records received by the provisioner. */
  requests: 'Requests',
  /** Outcomes, one count each: */
  provisioned: 'Provisioned',
  adopted: 'Adopted',
  deleted: 'Deleted',
  /** Deletes that released a requester's hold while others still hold the endpoint. */
  released: 'Released',
  /** Requests outside their requester's grant (NOT_AUTHORIZED), also counted as rejected. */
  notAuthorized: 'NotAuthorized',
  /** Requests answered SUPERSEDED: a newer request of the key took effect first (nothing changed). */
  superseded: 'Superseded',
  retried: 'Retried',
  /** Requests sent again later to wait for Atlas (a create in doubt, a FAILED endpoint going). */
  waiting: 'Waiting',
  /** FAILED endpoints deleted to be created anew. */
  recreating: 'Recreating',
  deadLettered: 'DeadLettered',
  rejected: 'Rejected',
  /** Follow-ups of a key after a create, an adoption or a delete: each one GET of its endpoint. */
  followUps: 'FollowUps',
  /** Follow-ups given up (Atlas or SQS kept failing, or too many): the sweep settles those keys. */
  followUpsDropped: 'FollowUpsDropped',
  /** Atlas round trips (milliseconds) and 429 answers. */
  atlasLatency: 'AtlasLatency',
  atlasRateLimited: 'AtlasRateLimited',
  /** Status checker. */
  statusChanged: 'StatusChanged',
  stuck: 'Stuck',
  missing: 'Missing',
  checkedEndpoints: 'CheckedEndpoints',
  /** Projects the checker could not check for a reason an operator must fix (401/403, bad secret). */
  checkFailed: 'CheckFailed',
  /** Answers of parked requests neither EventBridge nor the ledger took: lost, for an operator. */
  answersLost: 'AnswersLost',
  /** Status events EventBridge did not accept (kept in the ledger's outbox and sent again). */
  eventPublishFailed: 'EventPublishFailed',
  /** More than one endpoint listed for one natural key that this provisioner did not create. */
  duplicateEndpoints: 'DuplicateEndpoints',
} as const;
