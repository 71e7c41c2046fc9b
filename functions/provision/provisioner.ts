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
import { boundProfile } from '#ledger/rules.ts';
import { DeadlineError, InvalidRequestError, ProfileMismatchError } from '#lib/errors.ts';
import { FOLLOW_UP, ORIGINAL_MESSAGE_ID, WAITS } from '#messages/attributes.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { KeyedLock, Limiter } from '#runtime/concurrency.ts';
import type { ProvisionEnvironment } from '#runtime/environment.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS, CALLS_TO_START } from '#runtime/timing.ts';
import { announce, answerEvent, drainOutbox } from './answers.ts';
import { attribute, OUTCOME_METRIC, type Parsed, parse, timeLeft } from './attempt.ts';
import { create } from './create.ts';
import { remove } from './delete.ts';
import { fail, wait } from './failure.ts';
import { followUp, sendFollowUp } from './follow-up.ts';
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
    backoff: { baseSeconds: env.backoffBaseSeconds, capSeconds: env.backoffCapSeconds },
    followUp: { firstSeconds: env.followUpFirstSeconds, maxSeconds: env.followUpMaxSeconds },
  };
}

const DEFAULT_MAX_WAITS = 60;

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
    const parsed = parse(record.body);
    const isFollowUp = attribute(record, FOLLOW_UP) !== undefined;
    const run = () =>
      this.#limit.run(() =>
        isFollowUp ? followUp(this.#ctx, record, parsed, context) : this.#handle(record, parsed, context),
      );
    return parsed.ok ? this.#keys.run(naturalKey(parsed.request), run) : run();
  };

  async #handle(record: SQSRecord, parsed: Parsed, context?: InvocationClock): Promise<RecordOutcome> {
    const requestId = parsed.ok
      ? parsed.request.requestId
      : parsed.error instanceof InvalidRequestError
        ? parsed.error.requestId
        : undefined;
    const messageId = attribute(record, ORIGINAL_MESSAGE_ID) ?? record.messageId;
    const at: Attempt = {
      record,
      attempt: Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1),
      owner: `${record.messageId}/${randomUUID()}`,
      messageId,
      waits: Math.max(0, Number(attribute(record, WAITS)) || 0),
      deadline: context ? Date.now() + context.getRemainingTimeInMillis() : Number.POSITIVE_INFINITY,
      logger: this.#ctx.logger.createChild({
        persistentKeys: { messageId, ...(requestId !== undefined && { requestId }) },
      }),
    };
    this.#ctx.metrics.addMetric(METRIC.requests, MetricUnit.Count, 1);
    try {
      if (!parsed.ok) throw parsed.error;
      // Started only with time for the clean path: a record not started is delivered again shortly.
      if (timeLeft(at) < CALLS_TO_START * this.#ctx.atlasTimeoutMs + CALL_MARGIN_MS) {
        throw new DeadlineError('start this record');
      }
      return await this.#provision(at, parsed.request);
    } catch (error) {
      return fail(this.#ctx, at, error);
    }
  }

  async #provision(at: Attempt, request: ProvisionRequest): Promise<RecordOutcome> {
    at.request = request;
    assertProfileAllowed(request.profile, this.#ctx.allowedProfiles);
    const claimed = await this.#ctx.ledger.claim(request, at.owner, this.#ctx.leaseSeconds);
    at.claimed = claimed;
    // Before anything reaches Atlas: a key's endpoint is changed only with the profile it was made with.
    const bound = boundProfile(claimed);
    if (bound !== undefined && bound !== request.profile)
      throw new ProfileMismatchError(claimed.key, bound, request.profile);
    await drainOutbox(this.#ctx, claimed, at);
    const result =
      request.action === 'create'
        ? await create(this.#ctx, at, request, claimed)
        : await remove(this.#ctx, at, request, claimed);
    const statusSince =
      claimed.status === result.status ? claimed.statusSince : this.#ctx.now().toISOString();
    const answer = answerEvent(this.#ctx, result, at, request, claimed, statusSince);
    const events = [answer, ...(result.events ?? [])];
    await this.#ctx.ledger.settle(claimed, at.owner, {
      status: result.status,
      ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
      ...(result.atlasErrorMessage !== undefined && { atlasErrorMessage: result.atlasErrorMessage }),
      request,
      statusSince,
      ...(result.fields && { fields: result.fields }),
      events,
    });
    at.claimed = undefined;
    // A new endpoint or status not settled yet: followed closely until it is (never twice for one fact).
    const followedEndpointId =
      result.waitSeconds === undefined &&
      !SETTLED.has(result.status) &&
      (claimed.endpointId !== result.endpointId || claimed.status !== result.status)
        ? result.endpointId
        : undefined;
    // Side by side: neither throws, and the follow-up is delivered seconds later.
    await Promise.all([
      // Recorded with the answer: a refused publish is sent again from the outbox, never lost.
      announce(this.#ctx, claimed.key, events, at.logger),
      followedEndpointId !== undefined
        ? sendFollowUp(this.#ctx, at.record.body, at.messageId, followedEndpointId, 1, at.logger)
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
}
