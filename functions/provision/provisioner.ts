/**
 * The provisioner's domain: one SQS record in, exactly one outcome out. A record is provisioned
 * (created, adopted, deleted), waits for Atlas, is retried later, parked in the dead-letter queue,
 * or rejected; a failure this code does not understand is always retried, never acknowledged.
 *
 * This entry decides the outcome; the work it dispatches lives beside it, a file per action
 * (create.ts, delete.ts, follow-up.ts, failure.ts) and answers.ts for what is announced.
 */
import { randomUUID } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { assertProfileAllowed } from '#atlas/credentials.ts';
import { SETTLED } from '#events/status-change.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { boundProfile, withAnswer, withHold } from '#ledger/rules.ts';
import { DeadlineError, InvalidRequestError, NotAuthorizedError, ProfileMismatchError } from '#lib/errors.ts';
import { WAITS } from '#messages/attributes.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { grantProblem, Requesters } from '#messages/requesters.ts';
import { KeyedLock, Limiter } from '#runtime/concurrency.ts';
import type { ProvisionEnvironment } from '#runtime/environment.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS, CALLS_TO_START } from '#runtime/timing.ts';
import { announce, answerEvent, drainOutbox } from './answers.ts';
import { OUTCOME_METRIC, type Parsed, parse, timeLeft } from './attempt.ts';
import { create } from './create.ts';
import { remove } from './delete.ts';
import { fail, wait } from './failure.ts';
import { followUp, sendFollowUp } from './follow-up.ts';
import { lifecycleStarted, supersededAnswer, supersededEvents, supersedingRequest } from './order.ts';
import { boundedAttribute, type RecordSource, sourceOf } from './source.ts';
import type {
  Attempt,
  InvocationClock,
  ProvisionContext,
  ProvisionerOptions,
  RecordOutcome,
} from './types.ts';

export { MAX_FOLLOW_UPS } from './follow-up.ts';
export type { EndpointsApi, InvocationClock, ProvisionerOptions, RecordOutcome } from './types.ts';

/** The provisioner's tuning as its function's environment gives it: the flat options and the two groups. */
export function tuningFrom(env: ProvisionEnvironment) {
  return {
    ...env,
    requesters: new Requesters(env.requesterRegistry),
    backoff: { baseSeconds: env.backoffBaseSeconds, capSeconds: env.backoffCapSeconds },
    followUp: { firstSeconds: env.followUpFirstSeconds, maxSeconds: env.followUpMaxSeconds },
  };
}

const DEFAULT_MAX_WAITS = 60;

/** A request outside its requester's grant is refused before it claims its key or reaches Atlas. */
function authorize(source: RecordSource, request: ProvisionRequest): void {
  if (!source.requester) throw new Error('a record without a requester reached authorize');
  const problem = grantProblem(source.requester, request);
  if (problem !== undefined) throw new NotAuthorizedError(problem);
}

/** Handles SQS records: up to recordConcurrency at once, one at a time per natural key. */
export class Provisioner {
  readonly #ctx: ProvisionContext;
  readonly #keys = new KeyedLock();
  readonly #limit: Limiter;

  constructor(options: ProvisionerOptions) {
    this.#ctx = {
      ...options,
      maxWaits: options.maxWaits ?? DEFAULT_MAX_WAITS,
      random: options.random ?? Math.random,
      now: options.now ?? (() => new Date()),
    };
    this.#limit = new Limiter(options.recordConcurrency);
  }

  /**
   * The batch record handler (Powertools passes the Lambda context). Resolves with the outcome when
   * the record is done, waiting, or safely parked; throws (after delaying the record's next
   * delivery) when it must be retried.
   */
  handleRecord = (record: SQSRecord, context?: InvocationClock): Promise<RecordOutcome> => {
    const source = sourceOf(this.#ctx, record);
    const parsed = parse(record.body);
    const run = () =>
      this.#limit.run(() =>
        source.followUp && source.requester && !source.problem
          ? followUp(this.#ctx, record, source, parsed, context)
          : this.#handle(record, source, parsed, context),
      );
    return parsed.ok ? this.#keys.run(naturalKey(parsed.request), run) : run();
  };

  async #handle(
    record: SQSRecord,
    source: RecordSource,
    parsed: Parsed,
    context?: InvocationClock,
  ): Promise<RecordOutcome> {
    const requestId = parsed.ok
      ? parsed.request.requestId
      : parsed.error instanceof InvalidRequestError
        ? parsed.error.requestId
        : undefined;
    const messageId = source.messageId;
    const at: Attempt = {
      record,
      source,
      attempt: Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1),
      owner: `${record.messageId}/${randomUUID()}`,
      messageId,
      // Only the provisioner's own messages carry waits: a requester's queue rejects the attribute.
      waits: source.continuation ? Math.max(0, Number(boundedAttribute(record, WAITS)) || 0) : 0,
      deadline: context ? Date.now() + context.getRemainingTimeInMillis() : Number.POSITIVE_INFINITY,
      logger: this.#ctx.logger.createChild({
        persistentKeys: {
          messageId,
          ...(source.requester && { requester: source.requester.name }),
          ...(requestId !== undefined && { requestId }),
        },
      }),
    };
    this.#ctx.metrics.addMetric(METRIC.requests, MetricUnit.Count, 1);
    try {
      // Who is asking comes first: an untrusted message or a request outside its grant goes no further.
      if (source.problem) throw source.problem;
      if (!parsed.ok) throw parsed.error;
      at.request = parsed.request;
      // A profile the deployment does not have at all, then what this requester is granted.
      assertProfileAllowed(parsed.request.profile, this.#ctx.allowedProfiles);
      authorize(source, parsed.request);
      // Started only with time for the clean path: a record not started is delivered again shortly.
      if (timeLeft(at) < CALLS_TO_START * this.#ctx.atlasTimeoutMs + CALL_MARGIN_MS) {
        throw new DeadlineError('start this record');
      }
      return await this.#provision(at, parsed.request);
    } catch (error) {
      return fail(this.#ctx, at, error);
    }
  }

  /**
   * A redelivery of a message already answered: nothing is done again; the answer it was given is
   * announced again, under its eventId, so a requester that de-duplicates on eventId hears it once.
   */
  async #answerAgain(at: Attempt, claimed: LedgerItem, answer: StatusChangedDetail): Promise<RecordOutcome> {
    await this.#ctx.ledger.release(claimed.key, at.owner);
    at.claimed = undefined;
    await announce(this.#ctx, claimed.key, [answer], at.logger);
    at.logger.info('message answered before: its answer announced again', {
      naturalKey: claimed.key,
      outcome: answer.outcome,
      eventId: answer.eventId,
    });
    return answer.outcome as RecordOutcome;
  }

  async #provision(at: Attempt, request: ProvisionRequest): Promise<RecordOutcome> {
    at.request = request;
    const requester = at.source.requester;
    if (!requester) throw new Error('a record without a requester reached provisioning');
    const claimed = await this.#ctx.ledger.claim(request, at.owner, this.#ctx.leaseSeconds);
    at.claimed = claimed;
    // This very delivery was answered before (a redelivery): the same fact, announced again.
    const recorded = claimed.answered?.[at.record.messageId];
    if (recorded) return this.#answerAgain(at, claimed, recorded);
    // Before anything reaches Atlas: a key's endpoint is changed only with the profile it was made with.
    const bound = boundProfile(claimed);
    if (bound !== undefined && bound !== request.profile)
      throw new ProfileMismatchError(claimed.key, bound, request.profile);
    await drainOutbox(this.#ctx, claimed, at);
    // Request order: a newer request took effect in this one's place; nothing changes.
    const newer = supersedingRequest(claimed, at, request);
    if (newer !== undefined) return this.#superseded(at, request, claimed, newer);
    // A create holds the key for its requester (a repeated create is one hold); a delete releases it.
    const result =
      request.action === 'create'
        ? { ...(await create(this.#ctx, at, request, claimed)), holds: withHold(claimed, requester.name) }
        : await remove(this.#ctx, at, request, claimed);
    const statusSince =
      claimed.status === result.status ? claimed.statusSince : this.#ctx.now().toISOString();
    // A new endpoint or status not settled yet: followed closely until it is (never twice for one fact),
    // by a new chain the ledger records as the key's one live chain.
    const followedEndpointId =
      result.waitSeconds === undefined &&
      !SETTLED.has(result.status) &&
      (claimed.endpointId !== result.endpointId || claimed.status !== result.status)
        ? result.endpointId
        : undefined;
    const chain = followedEndpointId !== undefined && this.#ctx.followUp ? randomUUID() : undefined;
    const answer = answerEvent(this.#ctx, result, at, request, claimed, statusSince);
    const events = [
      answer,
      ...(result.events ?? []),
      ...supersededEvents(this.#ctx, at, request, claimed, result),
    ];
    const lifecycle = lifecycleStarted(claimed, at, request, result);
    await this.#ctx.ledger.settle(claimed, at.owner, {
      ...(result.holds && { holds: result.holds }),
      status: result.status,
      ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
      ...(result.atlasErrorMessage !== undefined && { atlasErrorMessage: result.atlasErrorMessage }),
      // A release leaves the key's lifecycle as it was: only the holds change.
      request: {
        ...request,
        action: result.outcome === 'RELEASED' ? claimed.action : request.action,
        requester: requester.name,
        ...(at.source.sentAt !== undefined && { sentAt: at.source.sentAt }),
      },
      ...(lifecycle && { lifecycle }),
      statusSince,
      fields: {
        ...result.fields,
        ...(chain && { followChain: chain }),
        // A final answer is remembered for this delivery; a waiting one is not final.
        ...(result.waitSeconds === undefined && {
          answered: withAnswer(claimed, at.record.messageId, answer),
        }),
      },
      events,
    });
    at.claimed = undefined;
    // The follow-ups belong to the key's lifecycle as this request leaves it.
    const followedLifecycle = (lifecycle ?? claimed.lifecycle)?.messageId;
    // Side by side: neither throws, and the follow-up is delivered seconds later.
    await Promise.all([
      // Recorded with the answer: a refused publish is sent again from the outbox, never lost.
      announce(this.#ctx, claimed.key, events, at.logger),
      followedEndpointId !== undefined
        ? sendFollowUp(
            this.#ctx,
            at.record.body,
            {
              requester: requester.name,
              originalMessageId: at.messageId,
              ...(chain && { chain }),
              ...(followedLifecycle !== undefined && { lifecycle: followedLifecycle }),
            },
            followedEndpointId,
            1,
            at.logger,
          )
        : undefined,
    ]);
    at.logger.info('request done', {
      outcome: result.outcome,
      naturalKey: claimed.key,
      endpointId: result.endpointId,
      status: result.status,
    });
    if (result.waitSeconds !== undefined) return wait(this.#ctx, at, result.waitSeconds, result.outcome);
    this.#ctx.metrics.addMetric(OUTCOME_METRIC[result.outcome], MetricUnit.Count, 1);
    return result.outcome;
  }

  /** Answers a superseded request (README "Order"): the key is left as it is, the lease given up. */
  async #superseded(
    at: Attempt,
    request: ProvisionRequest,
    claimed: LedgerItem,
    newer: string,
  ): Promise<RecordOutcome> {
    await this.#ctx.ledger.release(claimed.key, at.owner);
    at.claimed = undefined;
    // Published directly: a refused publish retries the record, which is superseded again.
    await this.#ctx.events.publish(supersededAnswer(this.#ctx, at, request, claimed, newer));
    this.#ctx.metrics.addMetric(OUTCOME_METRIC.SUPERSEDED, MetricUnit.Count, 1);
    at.logger.info('request superseded by a newer one; nothing changed', {
      naturalKey: claimed.key,
      supersededBy: newer,
    });
    return 'SUPERSEDED';
  }
}
