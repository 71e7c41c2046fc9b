/**
 * What the ledger holds: one item per natural key, its statuses and bounds, and what each writer
 * may change. Types and constants only, so every room can name them without loading the ledger.
 */

import type { AtlasStatus } from '#atlas/types.ts';
import type { StatusChangedDetail } from '#events/schema.ts';
import type { ProvisionRequest } from '#messages/request.ts';

/** The one value of `tracked`: present on an item the checker visits, absent otherwise. */
export const TRACKED = 'OPEN';

export const NEVER_CHECKED = '1970-01-01T00:00:00.000Z';
/**
 * requestIds kept per requester of a key: the current lifecycle's most recent ones, so no other
 * requester's traffic pushes a requester's requestIds out. Its events carry these.
 */
export const MAX_REQUEST_IDS = 20;
/** Creates in doubt remembered per key; an older one is forgotten after UNCONFIRMED_CREATE_TTL_MS. */
export const MAX_UNCONFIRMED_CREATES = 10;
export const UNCONFIRMED_CREATE_TTL_MS = 24 * 60 * 60 * 1000;
/** Final answers remembered per key, by the delivery they answered (a redelivery repeats its answer). */
export const MAX_ANSWERED = 10;
/**
 * FAILED endpoints of one key in any 24 hours, whatever the lifecycle: the one that reaches it
 * sends its request to the DLQ (ENDPOINT_FAILED), so neither a flapping endpoint nor replays and
 * new lifecycles recreate a key's endpoint without end.
 */
export const MAX_ENDPOINT_FAILURES_PER_DAY = 10;
export const ENDPOINT_FAILURE_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * The most events one item's outbox holds, whoever writes to it: a request's settle, the sweep's
 * and the follow-ups' recordCheck (rules.ts outboxHasRoom). At the bound, a new fact for the key
 * waits for EventBridge: a request waits (EVENTS_BACKLOGGED), a check is not recorded and
 * is made again later; a newer status of an endpoint takes the place of its older pending one
 * (rules.ts supersededBy) and is recorded. An event about a key is one per
 * requester with requestIds on it, so one fact may take several entries. 50 events of the largest size keep the item well
 * under DynamoDB's 400 KB (test/functions/lib/ledger/outbox-bounds.test.ts computes it).
 */
export const MAX_OUTBOX = 50;

/** Atlas statuses, plus the ledger's own: REQUESTED (claimed, no endpoint yet), DELETED, MISSING. */
export type LedgerStatus = AtlasStatus | 'REQUESTED' | 'DELETED' | 'MISSING';

/** Statuses after which the checker stops following an endpoint. ACTIVE stays followed, for drift. */
export const UNTRACKED: ReadonlySet<string> = new Set(['REQUESTED', 'DELETED', 'MISSING']);

/** A request as request order remembers it: when its original message was sent, and its ids. */
export interface AppliedRequest {
  /** The SQS SentTimestamp (epoch ms) of the request's original message. */
  sentAt: number;
  requestId: string;
  /** What it asked for: an older request of its requester for the other action is superseded. */
  action: 'create' | 'delete';
}

/** The request that started the key's current lifecycle (set its action). */
export interface LifecycleMarker extends AppliedRequest {
  /** The messageId its sender was given. */
  messageId: string;
  requester: string;
}

export interface LedgerItem {
  key: string;
  groupId: string;
  cloudProvider: string;
  regionName: string;
  vpcRegionName?: string;
  /**
   * The credentials profile the key's endpoint was made with. Written by the first claim, then only
   * when a create is sent or answered; while the key is bound (rules.ts boundProfile) a request
   * naming another profile is refused, so no request can repoint the sweep.
   */
  profile: string;
  action: 'create' | 'delete';
  /**
   * Per requester (by name), the requestIds of the key's current lifecycle that were answered,
   * oldest first, at most MAX_REQUEST_IDS each. Events about the key go to each requester here,
   * with its own list. An item written before requesters had names (a `requestIds` list, or set)
   * reads as `{ default: [...] }` (DEFAULT_REQUESTER). Lifecycles: rules.ts nextRequesters.
   */
  requesters: Record<string, string[]>;
  /** The requester of the request answered last (settle); absent on items written before. */
  lastRequester?: string;
  /**
   * Request order: per requester, the request sent last among those it applied (rules.ts
   * nextApplied). A request of that requester sent earlier, for the other action, is answered
   * SUPERSEDED and changes nothing (one for the same action asks for what the key has). Absent on items written before, and for requesters with none applied since.
   */
  applied?: Record<string, AppliedRequest>;
  /**
   * The request that started the key's current lifecycle (changed its action; the first request
   * settled on an item without one). A wait of a request sent before it, for the other action, and
   * a hand-back or follow-up of another lifecycle, are stale: they act no more.
   */
  lifecycle?: LifecycleMarker;
  /**
   * The requesters that hold the key's endpoint, each once, oldest first: a create adds its
   * requester, a delete removes it (rules.ts withHold, withoutHold; the provisioner computes it
   * under the lease, settle writes it). Absent: no holds recorded (also on items written before
   * holds were). A key whose endpoint is DELETED or MISSING has none.
   */
  holds?: string[];
  status: LedgerStatus;
  statusSince: string;
  endpointId?: string;
  atlasErrorMessage?: string;
  /** Set once when the checker reports the endpoint stuck past its deadline. */
  stuckAt?: string;
  tracked?: typeof TRACKED;
  checkedAt: string;
  createdAt: string;
  updatedAt: string;
  lastError?: { code: string; httpStatus?: number; detail: string; at: string };
  firstFailureAt?: string;
  lease?: { owner: string; expiresAt: number };
  /** A create was sent at this time and its outcome is not known yet: no create is sent until a listing settles it. */
  pendingCreate?: { sentAt: string };
  /**
   * Creates in doubt that a listing after the settle period did not show (send times). An
   * endpoint for the key that appears later is one of them: an extra that this provisioner made.
   */
  unconfirmedCreates?: string[];
  /**
   * FAILED endpoints met in this lifecycle (each deleted and created anew, up to a bound); an
   * ACTIVE status in between does not reset it, only a new lifecycle (a delete) or the bound does.
   */
  endpointFailures?: number;
  /**
   * When the key's endpoints were met FAILED, across lifecycles, oldest first: those of the last
   * day, at most MAX_ENDPOINT_FAILURES_PER_DAY (rules.ts endpointFailuresToday).
   */
  endpointFailedAt?: string[];
  /** A FAILED endpoint was deleted to be created anew; the key's requests wait for it to go. */
  recreating?: boolean;
  /**
   * The key's live follow-up chain: written with the answer (or the check) that starts one; a
   * follow-up of another chain stops, so a key is followed by one chain at a time.
   */
  followChain?: string;
  /** Extra endpoints for the key already announced (DUPLICATE_FOUND, UNCLAIMED): each once. */
  reported?: string[];
  /**
   * When a listing of the key's project first answered that the project does not exist (404
   * GROUP_NOT_FOUND); cleared by a listing that succeeds. A later such answer, long enough after,
   * retires the key (MISSING; events/status-change.ts retirement).
   */
  projectGoneSince?: string;
  /**
   * The final answers given, by the SQS messageId of the delivery each answered (the
   * MAX_ANSWERED most recent): a second delivery of that message announces the same answer again,
   * under the same eventId, instead of answering anew.
   */
  answered?: Record<string, StatusChangedDetail>;
  /** Status events recorded with the state they announce and not yet confirmed sent, by eventId. */
  outbox?: Record<string, StatusChangedDetail>;
}

/** Fields the provisioner writes while it holds the lease. */
export type LeaseFields = Pick<
  LedgerItem,
  | 'pendingCreate'
  | 'unconfirmedCreates'
  | 'endpointFailures'
  | 'endpointFailedAt'
  | 'recreating'
  | 'followChain'
  | 'answered'
>;

/** What amend may write: the bookkeeping, and the endpoint a request that ends in the DLQ leaves standing. */
export type AmendFields = LeaseFields &
  Partial<Pick<LedgerItem, 'status' | 'statusSince' | 'endpointId' | 'atlasErrorMessage' | 'profile'>>;

export interface SettleResult {
  status: LedgerStatus;
  endpointId?: string;
  atlasErrorMessage?: string;
  /**
   * The request answered; it joins its requester's requestIds (a new lifecycle starts a new list:
   * rules.ts nextRequesters). `requester` defaults to DEFAULT_REQUESTER.
   */
  request: Pick<ProvisionRequest, 'requestId' | 'action' | 'profile'> & {
    requester?: string;
    /** Its original message's send time (epoch ms): recorded in `applied` (rules.ts nextApplied). */
    sentAt?: number;
  };
  /** The request starts a lifecycle of the key: recorded as its `lifecycle`; absent: unchanged. */
  lifecycle?: LifecycleMarker;
  /**
   * The key's holds after this answer, in full (rules.ts withHold, withoutHold); absent: unchanged.
   * An empty list removes them; a status DELETED or MISSING clears them whatever is given.
   */
  holds?: string[];
  /** statusSince to record: the caller computes it, so the events in the outbox carry the same value. */
  statusSince: string;
  fields?: Partial<LeaseFields>;
  /** Events recorded in the outbox with this state. */
  events?: StatusChangedDetail[];
}

export interface CheckResult {
  status: LedgerStatus;
  atlasErrorMessage?: string;
  stuck?: boolean;
  /** statusSince to record when the status changed (the value the events announce). */
  statusSince?: string;
  /** The endpoint FAILED and the key goes back to the provisioner to be created anew. */
  handBack?: boolean;
  /**
   * Bookkeeping of extra endpoints (deleted ones leave unconfirmedCreates, reported ones join
   * reported), the endpoint that took the place of a recreated or vanished one, and a project
   * found gone (projectGoneSince; a retirement's reason in lastError, forgetting a create in
   * doubt and a recreation). `undefined` removes a field.
   */
  fields?: Partial<
    Pick<
      LedgerItem,
      | 'unconfirmedCreates'
      | 'reported'
      | 'endpointId'
      | 'projectGoneSince'
      | 'lastError'
      | 'pendingCreate'
      | 'recreating'
      | 'followChain'
    >
  >;
  events?: StatusChangedDetail[];
}
