/**
 * Follows every request of a local run to its final place, from what a requester and an
 * operator can see: the status events on the watched queue (one event pattern, as a
 * requester subscribes), and the event source's deliveries, retries and crashes.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import { FOLLOW_UP, ORIGINAL_MESSAGE_ID } from '#messages/attributes.ts';
import { readTopLevelField } from '#messages/json-scan.ts';
import { printable } from './printable.ts';
import type { BatchActivity } from './sqs-poller.ts';

/** Where a request ended. */
export type FinalPlace =
  | 'provisioned'
  | 'deleted'
  | 'released'
  | 'missing'
  | 'superseded'
  | 'dlq'
  | 'rejected';

/** How one delivery ended, as the event source saw it. */
export type DeliveryResult = 'done' | 'retried' | 'lost' | 'dlq (redrive)';

export interface Delivery {
  messageId: string;
  receiveCount: number;
  at: number;
  /** Absent while the delivery is in flight. */
  result?: DeliveryResult;
}

export interface TrackedRequest {
  /** The requestId, or "line N" for a body whose requestId cannot be read. */
  readonly label: string;
  readonly requestId?: string;
  /** From the body; "create" when it cannot be read. */
  readonly action: 'create' | 'delete';
  readonly body: string;
  /** The requester whose queue it was sent to, when the run knows it. */
  readonly requester?: string;
  readonly messageIds: Set<string>;
  readonly deliveries: Delivery[];
  /** Deliveries the function reported as failed (they come back later). */
  retries: number;
  /** Deliveries lost to a crash, timeout or throw (nothing deleted). */
  crashes: number;
  /** Why the last lost delivery was lost. */
  lastLoss?: string;
  /** What the view shows: queued, received, retried, an Atlas status, DLQ, rejected, deleted... */
  place: string;
  final?: FinalPlace;
  /** The error of the last DLQ or rejection event. */
  error?: StatusChangedDetail['error'];
  /**
   * Where this request's messages were parked (DLQ or rejected queue, from events and redrives),
   * also when another delivery settled the request: the summary shows both.
   */
  readonly parked: Array<'dlq' | 'rejected'>;
  endpointId?: string;
  readonly events: StatusChangedDetail[];
}

export interface TrackerOptions {
  /** The watched status-event queue (on moto). */
  eventsSqs: SQSClient;
  statusEventQueueUrl: string;
  /** The request queue's maxReceiveCount: a delivery at this count that is not deleted is redriven to the DLQ. */
  maxReceiveCount: number;
  /** Each requester's queue ARN with its name: a message followed from its first delivery is that requester's. */
  requesterQueues?: Record<string, string>;
}

/** FAILED is not among them: a FAILED endpoint is created anew, or its request ends in the DLQ. */
const FINAL_STATUS: Record<string, FinalPlace> = {
  ACTIVE: 'provisioned',
  DELETED: 'deleted',
  MISSING: 'missing',
};

/** Final places that later events about the same key (from other requests) do not undo. */
const STICKY: ReadonlySet<FinalPlace | undefined> = new Set([
  'provisioned',
  'deleted',
  'released',
  'missing',
  'superseded',
  'rejected',
]);

/** Events about extra endpoints of the key: they do not move the request that heard them. */
const ABOUT_OTHER_ENDPOINTS: ReadonlySet<string> = new Set([
  'DUPLICATE_DELETED',
  'DUPLICATE_FOUND',
  'UNCLAIMED',
]);

const fieldOf = (body: string, field: string): unknown => {
  try {
    return (JSON.parse(body) as Record<string, unknown> | null)?.[field];
  } catch {
    return undefined;
  }
};

/** Whether an event is for the request's requester (a request of unknown requester may be anyone's). */
const sameRequester = (request: TrackedRequest, detail: StatusChangedDetail) =>
  request.requester === undefined || request.requester === detail.requester;

/** Reads the requestId of a body as the function does for correlation: leniently, the first one. */
export function requestIdOf(body: string): string | undefined {
  const field = readTopLevelField(body, 'requestId');
  return field.found === 'string' && field.value !== '' ? field.value : undefined;
}

export class RequestTracker {
  readonly #options: TrackerOptions;
  readonly #requests: TrackedRequest[] = [];
  readonly #byMessageId = new Map<string, TrackedRequest>();
  readonly #byRequestId = new Map<string, TrackedRequest[]>();
  readonly #listeners = new Set<() => void>();
  /** Activity for messages received before their send was registered (the poller can be that quick). */
  readonly #early = new Map<string, BatchActivity[]>();
  #followUnknown = false;
  /** Events that named no registered request yet. */
  readonly #unmatched: StatusChangedDetail[] = [];
  readonly #stop = new AbortController();
  #polling: Promise<void> | undefined;
  /** Every status event seen, in order. */
  readonly events: StatusChangedDetail[] = [];
  readonly #eventIds = new Set<string>();
  /** When each fact (eventId) was first heard, epoch ms: answers that came late, after an outage. */
  readonly heardAt = new Map<string, number>();
  /** Events heard again with an eventId already heard (counted once, as a requester would). */
  heardAgain = 0;
  /** EventIds heard again for another fact (another outcome, message, status or endpoint): must be 0. */
  readonly reusedEventIds: string[] = [];
  readonly #factOf = new Map<string, string>();
  /** What went wrong around the requests: invalid status events, failures to read them, to poll or to delete. */
  readonly problems: string[] = [];

  constructor(options: TrackerOptions) {
    this.#options = options;
  }

  /** Starts reading the watched status-event queue. */
  start(): this {
    this.#polling ??= this.#poll();
    return this;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#polling;
  }

  get requests(): readonly TrackedRequest[] {
    return this.#requests;
  }

  /** Registers a request sent to a requester's queue. */
  sent(body: string, messageId: string, line: number, requester?: string): TrackedRequest {
    const requestId = requestIdOf(body);
    const request: TrackedRequest = {
      label: requestId ?? `line ${line}`,
      ...(requestId !== undefined && { requestId }),
      action: fieldOf(body, 'action') === 'delete' ? 'delete' : 'create',
      body,
      ...(requester !== undefined && { requester }),
      messageIds: new Set([messageId]),
      deliveries: [],
      retries: 0,
      crashes: 0,
      place: 'queued',
      parked: [],
      events: [],
    };
    this.#requests.push(request);
    this.#byMessageId.set(messageId, request);
    if (requestId !== undefined) {
      this.#byRequestId.set(requestId, [...(this.#byRequestId.get(requestId) ?? []), request]);
    }
    const early = this.#early.get(messageId) ?? [];
    this.#early.delete(messageId);
    for (const activity of early) this.onActivity(activity);
    const mine = (e: StatusChangedDetail) =>
      e.messageId !== undefined
        ? e.messageId === messageId
        : requestId === undefined
          ? e.requestIds.length === 0
          : e.requestIds.includes(requestId) && sameRequester(request, e);
    for (const detail of this.#unmatched.filter(mine)) {
      this.#unmatched.splice(this.#unmatched.indexOf(detail), 1);
      this.#apply(detail, [request]);
    }
    this.#changed();
    return request;
  }

  /** From now on, also follow messages sent by others (e.g. `npm run send`), from their first delivery. */
  followUnknown(): void {
    this.#followUnknown = true;
    for (const [messageId, activities] of this.#early) {
      const first = activities[0];
      if (first?.type !== 'received') continue;
      const [record] = first.records;
      if (record) this.sent(record.body, messageId, this.#requests.length + 1, this.#requesterOf(record));
    }
  }

  /** The event source's activity listener. */
  readonly onActivity = (activity: BatchActivity): void => {
    if (activity.type === 'poll-error') {
      this.problems.push(`the event source failed to poll or delete: ${activity.error.message}`);
      return;
    }
    for (const record of activity.records) {
      // A follow-up is the provisioner looking at a key again, not a delivery of the request: what
      // it finds comes as a status event like the checker's.
      if (record.messageAttributes?.[FOLLOW_UP] !== undefined) continue;
      const adopt = this.#followUnknown && activity.type === 'received';
      const request =
        this.#for(record) ??
        (adopt
          ? this.sent(record.body, record.messageId, this.#requests.length + 1, this.#requesterOf(record))
          : undefined);
      if (!request) {
        const only = { ...activity, records: [record] } as BatchActivity;
        this.#early.set(record.messageId, [...(this.#early.get(record.messageId) ?? []), only]);
        continue;
      }
      const receiveCount = Number(record.attributes.ApproximateReceiveCount);
      if (activity.type === 'received') {
        // A redelivery of a message already answered brings no new fact: the provisioner repeats
        // the recorded answer under the same eventId, which a requester (and this tracker) keeps
        // once. Only a delivery that may still be answered anew reopens the request.
        // A message SQS's redrive moved to the DLQ comes back from a replay under its own id: that
        // delivery is new.
        const answeredBefore =
          request.final !== undefined &&
          request.final !== 'dlq' &&
          request.deliveries.some((d) => d.messageId === record.messageId);
        request.deliveries.push({ messageId: record.messageId, receiveCount, at: activity.at });
        // A delivery reopens the request (a replay, a redelivery of one never answered) unless it
        // was rejected: its own answer settles it again. Only a late result of an earlier delivery
        // may not move it.
        if (request.final !== 'rejected' && !answeredBefore) this.#move(request, 'received');
        else this.#changed();
        continue;
      }
      const delivery = request.deliveries.findLast(
        (d) => d.messageId === record.messageId && d.receiveCount === receiveCount && d.result === undefined,
      );
      // A late result of an earlier delivery never moves the request: a later one is under way or settled it.
      const current = request.final === undefined && delivery === request.deliveries.at(-1);
      if (activity.type === 'completed') {
        const failed = activity.failed.includes(record);
        if (delivery) delivery.result = failed ? 'retried' : 'done';
        if (!failed) {
          this.#changed();
          continue;
        }
        request.retries += 1;
        if (current) this.#move(request, 'retried');
        else this.#changed();
      } else if (activity.type === 'errored') {
        request.crashes += 1;
        request.lastLoss = `${activity.reason}: ${activity.error.message}`;
        const redriven = receiveCount >= this.#options.maxReceiveCount;
        if (delivery) delivery.result = redriven ? 'dlq (redrive)' : 'lost';
        if (redriven) request.parked.push('dlq');
        if (redriven && (current || request.final === undefined)) this.#move(request, 'DLQ (redrive)', 'dlq');
        else if (current) this.#move(request, `lost (${activity.reason})`);
        else this.#changed();
      }
    }
  };

  /** A status event read from the watched queue (the poller calls this). */
  readonly onEvent = (detail: StatusChangedDetail): void => {
    this.#receive(detail);
  };

  /** Calls the listener after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  unfinished(): TrackedRequest[] {
    return this.#requests.filter((r) => r.final === undefined);
  }

  /** Resolves when the predicate holds, re-checked on every change; fails after the timeout with `describe()`. */
  waitFor(predicate: () => boolean, options: { timeoutMs: number; what: string }): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((ok, fail) => {
      const unsubscribe = this.subscribe(() => {
        if (!predicate()) return;
        clearTimeout(timer);
        unsubscribe();
        ok();
      });
      const timer = setTimeout(() => {
        unsubscribe();
        fail(
          new Error(
            `timed out after ${options.timeoutMs} ms waiting for ${options.what}:\n${this.describe()}`,
          ),
        );
      }, options.timeoutMs);
    });
  }

  /** Resolves when every request sent so far has reached a final place. */
  settled(timeoutMs: number): Promise<void> {
    return this.waitFor(() => this.unfinished().length === 0, {
      timeoutMs,
      what: 'every request to reach a final place',
    });
  }

  /** One line per request: label, place, deliveries, retries (control characters escaped). */
  describe(): string {
    return this.#requests
      .map((r) =>
        printable(
          `  ${r.label}: ${r.place}${r.final ? ' (final)' : ''}, ${r.deliveries.length} deliveries, ${r.retries} retries` +
            (r.error ? `, ${r.error.code}` : '') +
            (r.lastLoss ? `, ${r.crashes} lost (last: ${r.lastLoss})` : ''),
        ),
      )
      .join('\n');
  }

  #requesterOf(record: SQSRecord): string | undefined {
    return this.#options.requesterQueues?.[record.eventSourceARN];
  }

  #for(record: SQSRecord): TrackedRequest | undefined {
    const known = this.#byMessageId.get(record.messageId);
    if (known) return known;
    // A wait is the request sent again as a new message carrying the id its sender was given: it is
    // that message's request, even when another message has the same body (a producer's resend).
    const original = record.messageAttributes?.[ORIGINAL_MESSAGE_ID]?.stringValue;
    const carried = original === undefined ? undefined : this.#byMessageId.get(original);
    if (carried) {
      carried.messageIds.add(record.messageId);
      this.#byMessageId.set(record.messageId, carried);
      return carried;
    }
    // A replayed message comes back with a new id: match it to the parked request it was, by body,
    // else by requestId. Only a parked one: a message not registered yet (a producer's resend the
    // poller received before its send returned) is not its twin's, and waits in #early for sent().
    const requestId = requestIdOf(record.body);
    const twins = requestId === undefined ? [] : (this.#byRequestId.get(requestId) ?? []);
    const parked = this.#requests.filter((r) => r.final === 'dlq');
    const match = parked.find((r) => r.body === record.body) ?? twins.find((r) => r.final === 'dlq');
    if (match) {
      match.messageIds.add(record.messageId);
      this.#byMessageId.set(record.messageId, match);
    }
    return match;
  }

  #move(request: TrackedRequest, place: string, final?: FinalPlace) {
    request.place = place;
    request.final = final;
    this.#changed();
  }

  #changed() {
    for (const listener of this.#listeners) listener();
  }

  #receive(detail: StatusChangedDetail) {
    const targets = this.#targetsOf(detail);
    // Events are at least once: like any requester, the tracker hears each fact (eventId) once.
    // A replayed request parked again is a new fact, with an eventId of its own.
    const fact = [detail.outcome, detail.messageId, detail.status, detail.endpointId, detail.requester].join(
      '|',
    );
    if (this.#eventIds.has(detail.eventId)) {
      this.heardAgain += 1;
      if (this.#factOf.get(detail.eventId) !== fact) this.reusedEventIds.push(detail.eventId);
      return;
    }
    this.#factOf.set(detail.eventId, fact);
    this.#eventIds.add(detail.eventId);
    this.heardAt.set(detail.eventId, Date.now());
    this.events.push(detail);
    if (targets.length === 0) this.#unmatched.push(detail);
    this.#apply(detail, targets);
  }

  /** The requests an event answers: the provisioner's answer one message, the checker's name requestIds. */
  #targetsOf(detail: StatusChangedDetail): TrackedRequest[] {
    const byMessage = detail.messageId === undefined ? undefined : this.#byMessageId.get(detail.messageId);
    return detail.messageId !== undefined
      ? byMessage
        ? [byMessage]
        : []
      : detail.requestIds.length > 0
        ? // requestIds are the requester's own: another requester's request of the same id is not answered.
          detail.requestIds.flatMap((id) =>
            (this.#byRequestId.get(id) ?? []).filter((r) => sameRequester(r, detail)),
          )
        : // A rejected body without a readable requestId: the oldest such request still open.
          this.#requests.filter((r) => r.requestId === undefined && r.final === undefined).slice(0, 1);
  }

  #apply(detail: StatusChangedDetail, targets: TrackedRequest[]) {
    for (const request of targets) {
      request.events.push(detail);
      if (detail.endpointId && !ABOUT_OTHER_ENDPOINTS.has(detail.outcome))
        request.endpointId = detail.endpointId;
      if (detail.outcome === 'DEAD_LETTERED') request.parked.push('dlq');
      if (detail.outcome === 'REJECTED') request.parked.push('rejected');
      if (STICKY.has(request.final) || ABOUT_OTHER_ENDPOINTS.has(detail.outcome)) {
        this.#changed();
      } else if (detail.outcome === 'DEAD_LETTERED') {
        request.error = detail.error;
        this.#move(request, 'DLQ', 'dlq');
      } else if (detail.outcome === 'REJECTED') {
        request.error = detail.error;
        this.#move(request, 'rejected', 'rejected');
      } else if (detail.outcome === 'SUPERSEDED') {
        // A newer request took effect in its place (README "Order"): it changed nothing, and is done.
        this.#move(request, `superseded by ${detail.supersededBy ?? '?'}`, 'superseded');
      } else if (detail.outcome === 'RELEASED') {
        // A delete by one of several holders: its hold is gone, the endpoint stays for the others.
        this.#move(request, `RELEASED (${detail.holdsRemaining ?? '?'} holding)`, 'released');
      } else if (detail.outcome === 'STUCK') {
        this.#move(request, `${detail.status ?? '?'} (stuck)`);
      } else {
        const status = detail.status ?? detail.outcome;
        const final = FINAL_STATUS[status];
        // A create is done when ACTIVE, or when a later delete of its key is done; a delete when gone.
        const gone = final === 'deleted' || final === 'missing';
        const deleting = request.action === 'delete' || detail.action === 'delete';
        const done = final !== undefined && (deleting ? gone : !gone);
        this.#move(request, status, done ? final : undefined);
      }
    }
    if (targets.length === 0) this.#changed();
  }

  async #poll(): Promise<void> {
    const { eventsSqs, statusEventQueueUrl } = this.#options;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const out = await eventsSqs.send(
          new ReceiveMessageCommand({
            QueueUrl: statusEventQueueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
          }),
          { abortSignal: signal },
        );
        const messages = out.Messages ?? [];
        for (const message of messages) {
          const parsed = StatusChangedDetailSchema.safeParse(fieldOf(message.Body ?? '', 'detail'));
          if (parsed.success) this.#receive(parsed.data);
          else this.problems.push(`not a status event: ${printable(message.Body ?? '')}`);
        }
        if (messages.length > 0) {
          await eventsSqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: statusEventQueueUrl,
              Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
            }),
          );
        }
      } catch (error) {
        if (signal.aborted) return;
        this.problems.push(`could not read the status-event queue: ${(error as Error).message}`);
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
  }
}
