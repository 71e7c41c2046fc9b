/**
 * The provisioner's shared shapes: its options, the context every action reads, one attempt at a
 * record, and what an action answers. Types only, so the entry and the actions both import it.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type { AtlasClient } from '#atlas/client.ts';
import type { AtlasEndpoint } from '#atlas/types.ts';
import type { StatusEvents } from '#events/publisher.ts';
import type { Outcome, StatusChangedDetail } from '#events/status-event.ts';
import type { LeaseFields, Ledger, LedgerItem, LedgerStatus } from '#ledger/ledger.ts';
import type { Backoff, Queues } from '#messages/queues.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import type { Requesters } from '#messages/requesters.ts';
import type { RecordSource } from './source.ts';

/** How a record ended when it did not go back to the queue. */
export type RecordOutcome =
  | Extract<
      Outcome,
      | 'PROVISIONED'
      | 'ADOPTED'
      | 'DELETE_REQUESTED'
      | 'DELETED'
      | 'RECREATING'
      | 'RELEASED'
      | 'SUPERSEDED'
      | 'DEAD_LETTERED'
      | 'REJECTED'
    >
  | 'WAITING'
  /** A follow-up looked at its key's endpoint (and sent the next one, or found it settled). */
  | 'FOLLOWED'
  /** A follow-up given up: its key moved on, or Atlas or SQS kept failing (the sweep settles it). */
  | 'FOLLOW_UP_DROPPED';

/** The Atlas operations the provisioner uses. */
export type EndpointsApi = Pick<
  AtlasClient,
  'listEndpoints' | 'createEndpoint' | 'deleteEndpoint' | 'getEndpoint'
>;

/** What a request does with Atlas, each call bounded by the invocation (a follow-up only reads). */
export type RequestApi = Omit<EndpointsApi, 'getEndpoint'>;

export interface ProvisionerOptions {
  ledger: Pick<
    Ledger,
    | 'claim'
    | 'amend'
    | 'release'
    | 'settle'
    | 'recordFailure'
    | 'clearOutbox'
    | 'get'
    | 'recordCheck'
    | 'keepAnswer'
  >;
  atlas: { withClient<T>(profile: string, fn: (client: EndpointsApi) => Promise<T>): Promise<T> };
  queues: Pick<Queues, 'delay' | 'park' | 'wait' | 'followUp'>;
  events: Pick<StatusEvents, 'publish'>;
  logger: Logger;
  metrics: Pick<Metrics, 'addMetric'>;
  /** Who may ask for what, and which queue is whose (functions/lib/messages/requesters.ts). */
  requesters: Requesters;
  /** The private continuation queue: a record from it acts for the requester its attribute names. */
  continuationQueueArn: string;
  continuationQueueUrl: string;
  allowedProfiles: readonly string[];
  /** Deliveries (ApproximateReceiveCount) after which a retryable failure is parked in the DLQ. */
  maxAttempts: number;
  leaseSeconds: number;
  /** Records of one batch processed at once. */
  recordConcurrency: number;
  backoff: Backoff;
  /** How long after a create in doubt was sent a listing can tell whether it was done. */
  createSettleSeconds: number;
  /** FAILED endpoints of one key that are deleted and created anew; the next one ends in the DLQ. */
  maxEndpointFailures: number;
  /** The Atlas client's timeout of one HTTP request: no call starts with less time left. */
  atlasTimeoutMs: number;
  /**
   * Follow-ups of a key after a create, an adoption or a delete, until its endpoint settles:
   * the first after `firstSeconds`, each next one twice as late, at most `maxSeconds` apart.
   * Absent: no follow-ups (the status checker's sweep alone follows endpoints).
   */
  followUp?: { firstSeconds: number; maxSeconds: number };
  /** Waits for Atlas (message sent again later) before the request goes to the DLQ. Default 60. */
  maxWaits?: number;
  random?: () => number;
  now?: () => Date;
}

/** The options with their defaults filled in, built once per provisioner and shared by its actions. */
export type ProvisionContext = Readonly<
  ProvisionerOptions & Required<Pick<ProvisionerOptions, 'maxWaits' | 'random' | 'now'>>
>;

/** What the Lambda context tells of the time left; absent in tests that do not care. */
export interface InvocationClock {
  getRemainingTimeInMillis(): number;
}

/** What a create or a delete did with Atlas, for the entry to record, announce and count. */
export interface AtlasResult {
  outcome: Extract<
    RecordOutcome,
    'PROVISIONED' | 'ADOPTED' | 'DELETE_REQUESTED' | 'DELETED' | 'RECREATING' | 'RELEASED'
  >;
  status: LedgerStatus;
  endpointId?: string;
  atlasErrorMessage?: string;
  fields?: Partial<LeaseFields>;
  /** Events beside the answer (duplicates deleted or found). */
  events?: StatusChangedDetail[];
  /** The request is not done: it waits this long for Atlas after its answer is recorded. */
  waitSeconds?: number;
  /** The requesters holding the key after this request (absent: unchanged). */
  holds?: string[];
  /** Said in the answer: holds that remain after a release, a delete an operator forced. */
  answer?: Pick<StatusChangedDetail, 'holdsRemaining' | 'forced'>;
}

/** One delivery of one record. */
export interface Attempt {
  record: SQSRecord;
  /** Whose record it is and what of it is trusted (source.ts). */
  source: RecordSource;
  attempt: number;
  owner: string;
  /** The messageId the sender was given (kept across waits and replays). */
  messageId: string;
  waits: number;
  /** Epoch ms by which this record's work must be done. */
  deadline: number;
  logger: Logger;
  request?: ProvisionRequest;
  /** The ledger item while this attempt holds its lease. */
  claimed?: LedgerItem;
  /** This attempt wrote a create down and sent it; `createAnswered` once Atlas answered it. */
  createSent?: boolean;
  createAnswered?: boolean;
  /** The key's endpoints (not DELETING) as a listing after a create in doubt's settle period showed them. */
  listedAfterSettle?: AtlasEndpoint[];
}
