/**
 * The provisioner's domain: one SQS record in, exactly one outcome out. A record is provisioned
 * (created, adopted, deleted), waits for Atlas, is retried later, parked in the dead-letter queue,
 * or rejected; a failure this code does not understand is always retried, never acknowledged.
 *
 * One endpoint per natural key, whatever Atlas does: a create is written down before it is sent,
 * and a create whose outcome is unknown is never sent again until a listing taken after the settle
 * period shows no endpoint for the key; an extra endpoint that such a create made is deleted; a
 * FAILED endpoint is deleted and created anew, a bounded number of times.
 */
import { randomUUID } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { assertProfileAllowed } from '#atlas/credentials.ts';
import type { AtlasEndpoint } from '#atlas/types.ts';
import { SETTLED } from '#events/status-change.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import {
  type LeaseFields,
  type LedgerItem,
  MAX_UNCONFIRMED_CREATES,
  UNCONFIRMED_CREATE_TTL_MS,
} from '#ledger/ledger.ts';
import {
  AtlasApiError,
  ConflictUnresolvedError,
  CreateInDoubtError,
  DeadlineError,
  EndpointFailedError,
  EndpointRecreatingError,
  InvalidRequestError,
} from '#lib/errors.ts';
import { FOLLOW_UP, ORIGINAL_MESSAGE_ID, WAITS } from '#messages/attributes.ts';
import { MAX_MESSAGE_DELAY_SECONDS } from '#messages/queues.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { KeyedLock, Limiter } from '#runtime/concurrency.ts';
import type { ProvisionEnvironment } from '#runtime/environment.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS, CALLS_TO_START } from '#runtime/timing.ts';
import { announce, answerEvent, drainOutbox, duplicateEvent } from './answers.ts';
import {
  attribute,
  bounded,
  GONE,
  listKey,
  OUTCOME_METRIC,
  type Parsed,
  parse,
  timeLeft,
} from './attempt.ts';
import { remove } from './delete.ts';
import { fail, wait } from './failure.ts';
import { followUp, sendFollowUp } from './follow-up.ts';
import type {
  AtlasResult,
  Attempt,
  InvocationClock,
  ProvisionContext,
  ProvisionerOptions,
  RecordOutcome,
  RequestApi,
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

const fromEndpoint = (endpoint: AtlasEndpoint) => ({
  endpointId: endpoint.id,
  status: endpoint.status,
  ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
});

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
    await drainOutbox(this.#ctx, claimed, at);
    const result =
      request.action === 'create'
        ? await this.#create(at, request, claimed)
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

  /** Creates the key's endpoint, or adopts the one Atlas has; never twice, never a FAILED one. */
  async #create(at: Attempt, request: ProvisionRequest, claimed: LedgerItem): Promise<AtlasResult> {
    const key = claimed.key;
    if (claimed.pendingCreate) {
      const readyAt = Date.parse(claimed.pendingCreate.sentAt) + this.#ctx.createSettleSeconds * 1000;
      const waitSeconds = Math.ceil((readyAt - this.#ctx.now().getTime()) / 1000);
      if (waitSeconds > 0) throw new CreateInDoubtError(key, waitSeconds);
    }
    const settledLedger = !claimed.pendingCreate && !claimed.recreating;
    if (
      settledLedger &&
      claimed.endpointId !== undefined &&
      !GONE.has(claimed.status) &&
      claimed.status !== 'FAILED'
    ) {
      return {
        outcome: 'ADOPTED',
        endpointId: claimed.endpointId,
        status: claimed.status,
        ...(claimed.atlasErrorMessage !== undefined && { atlasErrorMessage: claimed.atlasErrorMessage }),
      };
    }
    return this.#ctx.atlas.withClient(request.profile, async (unbounded) => {
      const client = bounded(this.#ctx, unbounded, at);
      const listed = await listKey(client, request);
      if (claimed.recreating && listed.some((e) => e.id === claimed.endpointId && e.status === 'DELETING')) {
        throw new EndpointRecreatingError(key, this.#recreateWait(at));
      }
      const live = listed.filter((e) => e.status !== 'DELETING');
      if (live.length > 0) return this.#adopt(at, client, request, claimed, live);

      // Nothing listed after the settle period: a create in doubt was not done (yet). Remembered,
      // so that an endpoint it makes later is known as this provisioner's own extra.
      const unconfirmed = claimed.pendingCreate
        ? [...freshUnconfirmed(claimed, this.#ctx.now()), claimed.pendingCreate.sentAt].slice(
            -MAX_UNCONFIRMED_CREATES,
          )
        : undefined;
      const fields: Partial<LeaseFields> = {
        ...(unconfirmed && { unconfirmedCreates: unconfirmed }),
        ...(claimed.recreating && { recreating: undefined }),
      };
      if (timeLeft(at) - CALL_MARGIN_MS < this.#ctx.atlasTimeoutMs) throw new DeadlineError('send a create');
      await this.#ctx.ledger.amend(key, at.owner, {
        ...fields,
        pendingCreate: { sentAt: this.#ctx.now().toISOString() },
      });
      at.createSent = true;
      let created: AtlasEndpoint;
      try {
        created = await client.createEndpoint(request.groupId, {
          cloudProvider: request.cloudProvider,
          regionName: request.regionName,
          ...(request.vpcRegionName !== undefined && { vpcRegionName: request.vpcRegionName }),
        });
        at.createAnswered = true;
      } catch (error) {
        if (!(error instanceof AtlasApiError && error.status === 409)) throw error;
        at.createAnswered = true;
        const found = (await listKey(client, request)).filter((e) => e.status !== 'DELETING');
        if (found.length === 0) throw new ConflictUnresolvedError(key);
        // The create was answered (not done): only earlier creates in doubt can account for extras.
        return this.#adopt(at, client, request, { ...claimed, ...fields, pendingCreate: undefined }, found);
      }
      if (created.status === 'FAILED') return this.#recreate(at, client, request, claimed, created, fields);
      return { outcome: 'PROVISIONED', ...fromEndpoint(created), fields };
    });
  }

  /**
   * Adopts one of the key's live endpoints: the ledger's own, else an ACTIVE one, else the first.
   * Extras that creates in doubt can account for are deleted; any other extra is reported and left.
   */
  async #adopt(
    at: Attempt,
    client: RequestApi,
    request: ProvisionRequest,
    claimed: LedgerItem,
    live: AtlasEndpoint[],
  ): Promise<AtlasResult> {
    const keep =
      live.find((e) => e.id === claimed.endpointId) ?? live.find((e) => e.status === 'ACTIVE') ?? live[0];
    if (!keep) throw new Error('adopt needs an endpoint');
    const extras = live.filter((e) => e !== keep);
    const unconfirmed = freshUnconfirmed(claimed, this.#ctx.now());
    const events: StatusChangedDetail[] = [];
    let fields: Partial<LeaseFields> = {};
    if (extras.length > 0) {
      const resolved = await this.#resolveExtras(at, client, request, claimed, keep, extras, unconfirmed);
      events.push(...resolved.events);
      fields = { unconfirmedCreates: resolved.unconfirmed.length > 0 ? resolved.unconfirmed : undefined };
    } else if (claimed.pendingCreate && unconfirmed.length > 0) {
      // The doubt is resolved by this endpoint; older unconfirmed creates stay remembered.
      fields = { unconfirmedCreates: unconfirmed };
    }
    if (claimed.recreating) fields.recreating = undefined;
    if (keep.status === 'FAILED') return this.#recreate(at, client, request, claimed, keep, fields, events);
    return { outcome: 'ADOPTED', ...fromEndpoint(keep), fields, events };
  }

  /** Deletes the extras this provisioner's creates in doubt account for; reports the rest. */
  async #resolveExtras(
    at: Attempt,
    client: RequestApi,
    request: ProvisionRequest,
    claimed: LedgerItem,
    keep: AtlasEndpoint,
    extras: AtlasEndpoint[],
    unconfirmed: string[],
  ) {
    // Endpoints this provisioner may have made: the ledger's own, each create in doubt, each unconfirmed one.
    const ours =
      (claimed.endpointId === keep.id ? 1 : 0) + (claimed.pendingCreate ? 1 : 0) + unconfirmed.length;
    const events: StatusChangedDetail[] = [];
    if (extras.length + 1 > Math.max(ours, 1)) {
      // Someone else made at least one of them, and nothing says which: an operator decides.
      this.#ctx.metrics.addMetric(METRIC.duplicateEndpoints, MetricUnit.Count, extras.length);
      at.logger.error('more than one endpoint for the key, not all made by this provisioner', {
        naturalKey: claimed.key,
        kept: keep.id,
        extras: extras.map((e) => e.id),
      });
      for (const extra of extras)
        events.push(duplicateEvent(this.#ctx, 'DUPLICATE_FOUND', request, claimed, extra));
      return { events, unconfirmed };
    }
    for (const extra of extras) {
      await deleteIfThere(client, request, extra.id);
      at.logger.warn('deleted an extra endpoint made by a create in doubt', {
        naturalKey: claimed.key,
        kept: keep.id,
        deleted: extra.id,
      });
      events.push(duplicateEvent(this.#ctx, 'DUPLICATE_DELETED', request, claimed, extra));
    }
    // Each extra deleted was one of the unconfirmed creates (the oldest first).
    return { events, unconfirmed: unconfirmed.slice(Math.min(unconfirmed.length, extras.length)) };
  }

  /**
   * A FAILED endpoint is deleted to be created anew once it is gone, or, past the bound, the
   * request goes to the DLQ with Atlas's errorMessage.
   */
  async #recreate(
    at: Attempt,
    client: RequestApi,
    request: ProvisionRequest,
    claimed: LedgerItem,
    failed: AtlasEndpoint,
    fields: Partial<LeaseFields>,
    events: StatusChangedDetail[] = [],
  ): Promise<AtlasResult> {
    const failures = (claimed.endpointFailures ?? 0) + 1;
    if (failures >= this.#ctx.maxEndpointFailures) {
      // Left standing for an operator: the ledger says what stands, so nothing reads it as gone.
      // The count starts again: replaying the request is the operator's decision to try anew.
      await this.#ctx.ledger.amend(claimed.key, at.owner, {
        ...fields,
        endpointFailures: undefined,
        recreating: undefined,
        status: 'FAILED',
        endpointId: failed.id,
        ...(claimed.status !== 'FAILED' && { statusSince: this.#ctx.now().toISOString() }),
        ...(failed.errorMessage !== undefined && { atlasErrorMessage: failed.errorMessage }),
      });
      throw new EndpointFailedError(claimed.key, failures, failed.errorMessage);
    }
    await deleteIfThere(client, request, failed.id);
    at.logger.warn('endpoint FAILED: deleted to be created anew', {
      naturalKey: claimed.key,
      endpointId: failed.id,
      failures,
      atlasErrorMessage: failed.errorMessage,
    });
    return {
      outcome: 'RECREATING',
      endpointId: failed.id,
      status: 'DELETING',
      ...(failed.errorMessage !== undefined && { atlasErrorMessage: failed.errorMessage }),
      fields: { ...fields, endpointFailures: failures, recreating: true },
      events,
      waitSeconds: this.#recreateWait(at),
    };
  }

  /** Growing waits for a FAILED endpoint to go: the settle period, doubled per wait, capped. */
  #recreateWait(at: Attempt): number {
    return Math.min(MAX_MESSAGE_DELAY_SECONDS, this.#ctx.createSettleSeconds * 2 ** Math.min(at.waits, 6));
  }
}

/** Deletes an endpoint; one already gone (404) is as good. */
async function deleteIfThere(client: RequestApi, request: ProvisionRequest, endpointId: string) {
  try {
    await client.deleteEndpoint(request.groupId, request.cloudProvider, endpointId);
  } catch (error) {
    if (!(error instanceof AtlasApiError && error.status === 404)) throw error;
  }
}

/** The key's unconfirmed creates that may still land (older ones are forgotten). */
function freshUnconfirmed(item: LedgerItem, now: Date): string[] {
  const since = now.getTime() - UNCONFIRMED_CREATE_TTL_MS;
  return (item.unconfirmedCreates ?? []).filter((sentAt) => Date.parse(sentAt) >= since);
}
