/** How a request that did not finish ends: it waits for Atlas, is retried, or is parked (see fail). */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { eventIdOf, type StatusChangedDetail } from '#events/status-event.ts';
import { describeFailure, EndpointFailedError, type FailureInfo, InvalidRequestError } from '#lib/errors.ts';
import { outageWaitSeconds, retryDelaySeconds } from '#messages/queues.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { detail } from './answers.ts';
import { OUTCOME_METRIC } from './attempt.ts';
import { orderOf } from './order.ts';
import type { Attempt, ProvisionContext, RecordOutcome } from './types.ts';

/** The request waits for Atlas: sent again as a new message later, or parked when it waited too often. */
export async function wait(
  ctx: ProvisionContext,
  at: Attempt,
  seconds: number,
  outcome: RecordOutcome = 'WAITING',
): Promise<RecordOutcome> {
  await ctx.queues.wait(at.record.body, seconds, {
    requester: actingFor(at),
    originalMessageId: at.messageId,
    waits: at.waits + 1,
    ...orderOf(at),
  });
  ctx.metrics.addMetric(OUTCOME_METRIC[outcome], MetricUnit.Count, 1);
  at.logger.info('request waits for Atlas', { delaySeconds: seconds, waits: at.waits + 1 });
  return outcome;
}

/**
 * The one path of every failure: describeFailure decides; a retry delays the record and
 * rethrows so the batch reports it; a wait sends the request again later; dlq and reject
 * announce, park the original body and resolve.
 */
export async function fail(ctx: ProvisionContext, at: Attempt, error: unknown): Promise<RecordOutcome> {
  let failure = describeFailure(error);
  const now = ctx.now().toISOString();
  const inDoubt = at.createSent === true && !at.createAnswered && failure.outcomeUnknown === true;
  if (inDoubt) {
    // The create may still be done: whatever the attempt count, the request waits (spending no
    // attempt) and the key is listed after the settle period before anything else happens to it.
    // A create is sent only with a wait left (create.ts), so this wait is always within maxWaits.
    failure = {
      ...failure,
      disposition: 'wait',
      retryAfterSeconds: Math.max(failure.retryAfterSeconds ?? 0, ctx.createSettleSeconds),
    };
    at.logger.warn('create in doubt: the key waits for a listing after the settle period', {
      naturalKey: at.claimed?.key,
    });
  }
  const waiting = failure.disposition === 'wait' && at.waits < ctx.maxWaits;
  // A create written down and then not sent, or answered: nothing is in doubt any more.
  const resolvedCreate = at.createSent === true && !inDoubt;
  let firstFailureAt: string | undefined;
  if (at.claimed) {
    try {
      if (waiting && !resolvedCreate) await ctx.ledger.release(at.claimed.key, at.owner);
      else {
        firstFailureAt = (
          await ctx.ledger.recordFailure(at.claimed.key, at.owner, failure, { resolvedCreate })
        ).firstFailureAt;
      }
    } catch (ledgerError) {
      at.logger.warn('could not record the failure in the ledger', { error: ledgerError });
    }
  }
  // A wait with no length of its own waits out an outage of our AWS services: longer each time.
  if (waiting)
    return wait(
      ctx,
      at,
      failure.retryAfterSeconds ?? outageWaitSeconds(at.waits + 1, ctx.backoff, ctx.random),
    );
  failure = { ...failure, detail: `${failure.detail}${doubtSaid(at)}` };

  const lastAttempt = at.attempt >= ctx.maxAttempts;
  const log = {
    failure,
    attempt: at.attempt,
    ...(failure.code === 'INTERNAL_ERROR' && { error }),
  };
  if (failure.disposition === 'retry' && !lastAttempt) {
    const delaySeconds = retryDelaySeconds(failure, at.attempt, ctx.backoff, ctx.random);
    try {
      if (at.source.queueUrl !== undefined)
        await ctx.queues.delay(at.source.queueUrl, at.record.receiptHandle, delaySeconds);
    } catch (sqsError) {
      // The record still comes back, after the queue's own visibility timeout.
      at.logger.warn('could not delay the retry', { error: sqsError });
    }
    ctx.metrics.addMetric(METRIC.retried, MetricUnit.Count, 1);
    at.logger.warn('request will be retried', { ...log, delaySeconds });
    throw error;
  }

  // A request is parked in its own requester's DLQ (replayed into its own queue); one whose
  // requester is unknown can only be rejected.
  const requester = at.source.requester;
  const destination = failure.disposition === 'reject' || !requester ? 'reject' : 'dlq';
  const requestId =
    at.request?.requestId ?? (error instanceof InvalidRequestError ? error.requestId : undefined);
  const outcome = destination === 'reject' ? 'REJECTED' : 'DEAD_LETTERED';
  // Parked first, with its reason, whatever EventBridge does: a refused park throws and the
  // record comes back, announced by nobody yet. Then announced: an answer EventBridge refuses is
  // kept in the ledger (it has no key to wait in) until the sweep sends it. The SQS message is
  // part of the fact: a replay parked again is a new parking.
  const summary = errorSummary(failure);
  await ctx.queues.park(
    destination === 'dlq' && requester ? { dlqUrl: requester.dlqUrl } : 'reject',
    at.record.body,
    {
      failure,
      ...(requester && { requester: requester.name }),
      attempts: at.attempt,
      firstFailureAt: firstFailureAt ?? firstFailureFallback(at, now),
      lastFailureAt: now,
      originalMessageId: at.messageId,
      ...(requestId !== undefined && { requestId }),
      ...(at.source.sentAt !== undefined && { sentAt: at.source.sentAt }),
    },
  );
  await announceParked(
    ctx,
    at,
    detail(
      ctx,
      outcome,
      at,
      at.request,
      {
        eventId: eventIdOf(outcome, at.messageId, at.record.messageId, requestId, summary.code),
        error: summary,
        ...(error instanceof EndpointFailedError &&
          error.atlasErrorMessage !== undefined && { errorMessage: error.atlasErrorMessage }),
      },
      requestId,
    ),
  );
  ctx.metrics.addMetric(OUTCOME_METRIC[outcome], MetricUnit.Count, 1);
  if (failure.code === 'NOT_AUTHORIZED') ctx.metrics.addMetric(METRIC.notAuthorized, MetricUnit.Count, 1);
  at.logger.error(destination === 'reject' ? 'request rejected' : 'request sent to the dead-letter queue', {
    ...log,
    outcome,
  });
  return outcome;
}

/**
 * What a parked request's reason says of the key's create in doubt, if it had one: what a listing
 * after the settle period showed (which endpoint, or none), or that none succeeded.
 */
function doubtSaid(at: Attempt): string {
  const pending = at.claimed?.pendingCreate;
  if (!pending && !at.createSent) return '';
  if (at.listedAfterSettle) {
    const [endpoint, ...more] = at.listedAfterSettle;
    if (!endpoint) return '; a listing after the settle period shows no endpoint for the key';
    return `; a listing after the settle period shows endpoint ${endpoint.id} (${endpoint.status}) for the key${more.length > 0 ? ` and ${more.length} more` : ''}`;
  }
  if (!pending) return '';
  return `; the create sent at ${pending.sentAt} is still in doubt: no listing after its settle period succeeded, so whether an endpoint exists is not known`;
}

/** The requester a wait acts for: only a trusted record (its requester known) ever waits. */
function actingFor(at: Attempt): string {
  if (!at.source.requester) throw new Error('only a record whose requester is known can wait');
  return at.source.requester.name;
}

/**
 * Announces the answer of a parked request; one EventBridge refuses is kept in the ledger until
 * the sweep sends it. Never throws: the request is parked, and parking it again would be a
 * second fact. If the ledger refuses too, the answer is lost: logged and counted for an operator.
 */
async function announceParked(
  ctx: ProvisionContext,
  at: Attempt,
  answer: StatusChangedDetail,
): Promise<void> {
  try {
    await ctx.events.publish(answer);
    return;
  } catch (error) {
    ctx.metrics.addMetric(METRIC.eventPublishFailed, MetricUnit.Count, 1);
    at.logger.warn('could not publish the answer of a parked request; it is kept for the sweep', { error });
  }
  try {
    await ctx.ledger.keepAnswer(answer);
  } catch (error) {
    ctx.metrics.addMetric(METRIC.answersLost, MetricUnit.Count, 1);
    at.logger.error('the answer of a parked request is lost: EventBridge and the ledger refused it', {
      error,
      eventId: answer.eventId,
      outcome: answer.outcome,
    });
  }
}

/** Without a ledger record, a redelivered message failed first when it was first received. */
function firstFailureFallback(at: Attempt, now: string): string {
  const first = Number(at.record.attributes.ApproximateFirstReceiveTimestamp);
  return at.attempt > 1 && Number.isFinite(first) && first > 0 ? new Date(first).toISOString() : now;
}

const errorSummary = (failure: FailureInfo): NonNullable<StatusChangedDetail['error']> => ({
  code: failure.code,
  ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
  detail: failure.detail,
});
