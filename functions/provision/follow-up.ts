/**
 * Follow-ups: a key's endpoint read again seconds after a request changed it, until it settles,
 * so a status change is announced sooner than the status checker's sweep would.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type { AtlasEndpoint } from '#atlas/types.ts';
import {
  goneStatus,
  handBackRequest,
  SETTLED,
  type Successor,
  statusChange,
  successorChange,
  successorOf,
} from '#events/status-change.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import type { CheckResult, LedgerItem } from '#ledger/item.ts';
import { describeFailure, isEndpointNotFound } from '#lib/errors.ts';
import { FOLLOW_CHAIN, FOLLOW_UP, FOLLOWED_ENDPOINT_ID } from '#messages/attributes.ts';
import { MAX_MESSAGE_DELAY_SECONDS, retryDelaySeconds } from '#messages/queues.ts';
import { naturalKey } from '#messages/request.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS } from '#runtime/timing.ts';
import { announce } from './answers.ts';
import { listKey, type Parsed } from './attempt.ts';
import { boundedAttribute, type RecordSource } from './source.ts';
import type { InvocationClock, ProvisionContext, RecordOutcome } from './types.ts';

/**
 * Follow-ups of one chain at most: about 20 minutes at the default spacing (10 s doubling to
 * 30 s), far past Atlas's usual activation; past it the sweep alone follows the key (and reports
 * it STUCK past the in-progress deadline).
 */
export const MAX_FOLLOW_UPS = 40;

/**
 * A follow-up: one GET of the key's endpoint, recorded and announced as the sweep would
 * (`recordCheck`: only while no provisioner holds the key and nothing moved since the read, so it
 * never keeps a key busy and never races a request), then the next follow-up, later, until the
 * endpoint settles. A FAILED create goes back to the provisioner. An endpoint Atlas recreated
 * under a new id is followed to its successor (successorOf). It never creates, and it never
 * ends in the DLQ: a follow-up Atlas or SQS keep failing is dropped with a metric, and the
 * sweep settles its key.
 */
export async function followUp(
  ctx: ProvisionContext,
  record: SQSRecord,
  source: RecordSource,
  parsed: Parsed,
  context?: InvocationClock,
): Promise<RecordOutcome> {
  const messageId = source.messageId;
  const requester = source.requester?.name;
  const number = Math.max(1, Number(boundedAttribute(record, FOLLOW_UP)) || 1);
  const endpointId = boundedAttribute(record, FOLLOWED_ENDPOINT_ID);
  const chain = boundedAttribute(record, FOLLOW_CHAIN);
  const lifecycle = source.lifecycle;
  const logger = ctx.logger.createChild({
    persistentKeys: {
      messageId,
      followUp: number,
      ...(parsed.ok && { requestId: parsed.request.requestId }),
    },
  });
  const deadline = context ? Date.now() + context.getRemainingTimeInMillis() : Number.POSITIVE_INFINITY;
  const drop = (reason: string, extra: Record<string, unknown> = {}) => {
    logger.warn('follow-up dropped; the status checker settles the key', { reason, ...extra });
    ctx.metrics.addMetric(METRIC.followUpsDropped, MetricUnit.Count, 1);
    return 'FOLLOW_UP_DROPPED' as const;
  };
  if (!parsed.ok || endpointId === undefined || requester === undefined)
    return drop('not a follow-up this version can read');
  const request = parsed.request;
  const next = async (
    delaySeconds: number,
    nextNumber = number + 1,
    followed = endpointId,
  ): Promise<RecordOutcome> => {
    if (nextNumber > MAX_FOLLOW_UPS) return drop('too many follow-ups', { followUps: number });
    const sent = await sendFollowUp(
      ctx,
      record.body,
      {
        requester,
        originalMessageId: messageId,
        ...(chain !== undefined && { chain }),
        ...(lifecycle !== undefined && { lifecycle }),
      },
      followed,
      nextNumber,
      logger,
      delaySeconds,
    );
    return sent ? 'FOLLOWED' : 'FOLLOW_UP_DROPPED';
  };
  try {
    const item = await ctx.ledger.get(naturalKey(request));
    // Followed no more: another chain follows the key, it has another endpoint, settled, or is the
    // provisioner's again.
    if (
      !item ||
      item.followChain !== chain ||
      item.endpointId !== endpointId ||
      SETTLED.has(item.status) ||
      item.pendingCreate ||
      item.recreating ||
      // A follow-up of an older lifecycle (a newer request changed the key's action since): it just stops.
      (lifecycle !== undefined && item.lifecycle !== undefined && item.lifecycle.messageId !== lifecycle)
    ) {
      logger.debug('follow-up done: the key moved on or settled', { naturalKey: item?.key });
      return 'FOLLOWED';
    }
    const now = ctx.now();
    // A request holds the key: look again after it (it follows any change it makes itself).
    if (item.lease && item.lease.expiresAt >= now.getTime()) return next(followUpDelay(ctx, number + 1));
    // Short of time: looked at again shortly, as the chain's next follow-up (a chain always advances).
    if (deadline - Date.now() - CALL_MARGIN_MS < ctx.atlasTimeoutMs) return next(2);
    const provider = request.cloudProvider;
    const { endpoint, successor } = await ctx.atlas.withClient(request.profile, async (unbounded) => {
      const options = () => {
        const left = deadline - Date.now() - CALL_MARGIN_MS;
        return Number.isFinite(left) ? { signal: AbortSignal.timeout(left) } : {};
      };
      try {
        return { endpoint: await unbounded.getEndpoint(request.groupId, provider, endpointId, options()) };
      } catch (error) {
        if (!isEndpointNotFound(error)) throw error;
      }
      // Gone: Atlas may have put a new endpoint in its place (a recreation), which the key follows.
      if (item.action !== 'create') return { successor: { kind: 'gone' } as Successor };
      const listed = await listKey(
        {
          listEndpoints: (groupId, cloudProvider) =>
            unbounded.listEndpoints(groupId, cloudProvider, options()),
        },
        request,
      );
      const others = listed.filter((e: AtlasEndpoint) => e.id !== endpointId && e.status !== 'DELETING');
      return { successor: successorOf(item, others) };
    });
    ctx.metrics.addMetric(METRIC.followUps, MetricUnit.Count, 1);
    if (successor?.kind === 'waiting') return next(followUpDelay(ctx, number + 1));
    if (successor?.kind === 'recreated' || successor?.kind === 'adopted') {
      const change = successorChange(item, successor, now);
      const successorId = successor.endpoint.id;
      // Moved on since it was read: the next follow-up reads it again (and stops if it is not ours).
      if (!(await recordChange(ctx, item, change, { endpointId: successorId, messageId, requester }, logger)))
        return next(followUpDelay(ctx, number + 1));
      logger.info('follow-up: the key follows the endpoint that took its place', {
        naturalKey: item.key,
        previousEndpointId: endpointId,
        endpointId: successorId,
        how: successor.kind,
      });
      if (SETTLED.has(change.result.status)) return 'FOLLOWED';
      return next(followUpDelay(ctx, number + 1), number + 1, successorId);
    }
    const status = endpoint ? endpoint.status : goneStatus(item);
    if (status !== item.status) {
      const handBack = status === 'FAILED' && item.action === 'create';
      const change = statusChange(
        item,
        {
          status,
          ...(endpoint?.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
          ...(handBack && { handBack }),
        },
        now,
      );
      if (!(await recordChange(ctx, item, change, { endpointId, messageId, requester }, logger)))
        return next(followUpDelay(ctx, number + 1));
      logger.info('follow-up: status changed', { naturalKey: item.key, endpointId, status });
    }
    if (SETTLED.has(status)) return 'FOLLOWED';
    return next(followUpDelay(ctx, number + 1));
  } catch (error) {
    const failure = describeFailure(error);
    // 429, 5xx, timeouts, a busy key: asked again later, as a follow-up, never as a retry of the record.
    if (failure.disposition === 'retry' || failure.disposition === 'wait') {
      // Retry-After when Atlas gave one, else the backoff, but no sooner than the current spacing.
      const delay = Math.min(
        MAX_MESSAGE_DELAY_SECONDS,
        Math.max(
          retryDelaySeconds(failure, number, ctx.backoff, ctx.random),
          failure.retryAfterSeconds === undefined ? followUpDelay(ctx, number) : 0,
        ),
      );
      logger.warn('follow-up failed; asked again later', { failure, delaySeconds: delay });
      return next(Math.max(1, delay));
    }
    return drop('Atlas refused the follow-up', { failure });
  }
}

/**
 * Records a change as the sweep would (only if nothing moved since the item was read and the
 * outbox has room, the change replacing the endpoint's older pending status) and announces what
 * the outbox then holds; false when it was not recorded. A FAILED
 * endpoint's key goes back to the provisioner first: a lost hand-back is seen again.
 */
async function recordChange(
  ctx: ProvisionContext,
  item: LedgerItem,
  change: { result: CheckResult; events: StatusChangedDetail[] },
  followed: { endpointId: string; messageId: string; requester: string },
  logger: Logger,
): Promise<boolean> {
  if (change.result.handBack) {
    await ctx.queues.wait(JSON.stringify(handBackRequest(item)), 0, {
      requester: followed.requester,
      originalMessageId: followed.messageId,
      waits: 0,
      // The hand-back continues this lifecycle only (README "Order").
      ...(item.lifecycle !== undefined && { lifecycle: item.lifecycle.messageId }),
    });
    logger.warn('endpoint FAILED: the key goes back to the provisioner to be created anew', {
      naturalKey: item.key,
      endpointId: followed.endpointId,
    });
  }
  const recorded = await ctx.ledger.recordCheck(
    item.key,
    item.status,
    { ...change.result, events: change.events },
    item.outbox,
    item.updatedAt,
  );
  if (!recorded) return false;
  // What the outbox holds now: the change, and what it did not supersede.
  await announce(ctx, item.key, Object.values(recorded.outbox ?? {}), logger);
  return true;
}

/** The spacing before follow-up `number`: the first after firstSeconds, doubling, capped. */
function followUpDelay(ctx: ProvisionContext, number: number): number {
  const spacing = ctx.followUp;
  if (!spacing) return MAX_MESSAGE_DELAY_SECONDS;
  return Math.min(spacing.maxSeconds, spacing.firstSeconds * 2 ** Math.min(number - 1, 20));
}

/** Sends follow-up `number` of a key; a failure to send is logged and counted, never the record's. */
export async function sendFollowUp(
  ctx: ProvisionContext,
  body: string,
  carried: { requester: string; originalMessageId: string; chain?: string; lifecycle?: string },
  endpointId: string,
  number: number,
  logger: Logger,
  delaySeconds = followUpDelay(ctx, number),
): Promise<boolean> {
  if (!ctx.followUp) return false;
  try {
    await ctx.queues.followUp(body, delaySeconds, { ...carried, number, endpointId });
    return true;
  } catch (error) {
    logger.warn('could not send a follow-up; the status checker settles the key', { error, endpointId });
    ctx.metrics.addMetric(METRIC.followUpsDropped, MetricUnit.Count, 1);
    return false;
  }
}
