/** Names shared by the functions (which emit them) and the stack (which graphs and alarms on them). */
export const METRICS_NAMESPACE = 'AtlasBackupPrivateEndpoints';
export const SERVICE = { provisioner: 'provisioner', statusChecker: 'status-checker' } as const;

export const METRIC = {
  /** Records received by the provisioner. */
  requests: 'Requests',
  /** Outcomes, one count each: */
  provisioned: 'Provisioned',
  adopted: 'Adopted',
  deleted: 'Deleted',
  retried: 'Retried',
  deadLettered: 'DeadLettered',
  rejected: 'Rejected',
  /** Atlas round trips (milliseconds) and 429 answers. */
  atlasLatency: 'AtlasLatency',
  atlasRateLimited: 'AtlasRateLimited',
  /** Status checker. */
  statusChanged: 'StatusChanged',
  stuck: 'Stuck',
  missing: 'Missing',
  checkedEndpoints: 'CheckedEndpoints',
} as const;
