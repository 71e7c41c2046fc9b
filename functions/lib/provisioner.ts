/**
 * The provisioner's domain: one SQS record in, exactly one outcome out. A record is provisioned
 * (created, adopted, deleted), retried later, parked in the dead-letter queue, or rejected; a
 * failure this code does not understand is always retried, never acknowledged.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type { AtlasClient } from '#atlas/client.ts';
import type { AtlasEndpoint } from '#atlas/types.ts';
import { KeyedLock, Limiter } from '#lib/concurrency.ts';
import { assertProfileAllowed } from '#lib/credentials.ts';
import {
  AtlasApiError,
  ConflictUnresolvedError,
  describeFailure,
  type FailureInfo,
  InvalidRequestError,
} from '#lib/errors.ts';
import type { StatusEvents } from '#lib/events.ts';
import type { Ledger, LedgerItem, LedgerStatus } from '#lib/ledger.ts';
import { type Backoff, type Queues, retryDelaySeconds } from '#lib/queues.ts';
import { naturalKey, type ProvisionRequest, parseRequest } from '#lib/request.ts';
import type { Outcome, StatusChangedDetail } from '#lib/status-event.ts';
import { METRIC } from '#lib/telemetry.ts';

/** How a record ended when it did not go back to the queue. */
export type RecordOutcome = Extract<
  Outcome,
  'PROVISIONED' | 'ADOPTED' | 'DELETE_REQUESTED' | 'DELETED' | 'DEAD_LETTERED' | 'REJECTED'
>;

/** The Atlas operations the provisioner uses. */
export type EndpointsApi = Pick<AtlasClient, 'listEndpoints' | 'createEndpoint' | 'deleteEndpoint'>;

export interface ProvisionerOptions {
  ledger: Pick<Ledger, 'claim' | 'settle' | 'recordFailure'>;
  atlas: { withClient<T>(profile: string, fn: (client: EndpointsApi) => Promise<T>): Promise<T> };
  queues: Pick<Queues, 'delay' | 'park'>;
  events: Pick<StatusEvents, 'publish'>;
  logger: Logger;
  metrics: Pick<Metrics, 'addMetric'>;
  allowedProfiles: readonly string[];
  /** Deliveries (ApproximateReceiveCount) after which a retryable failure is parked in the DLQ. */
  maxAttempts: number;
  leaseSeconds: number;
  /** Records of one batch processed at once. */
  recordConcurrency: number;
  backoff: Backoff;
  random?: () => number;
  now?: () => Date;
}

/** Ledger statuses that mean no endpoint to adopt or delete. */
const GONE: ReadonlySet<LedgerStatus> = new Set(['REQUESTED', 'DELETING', 'DELETED', 'MISSING']);

const OUTCOME_METRIC: Record<RecordOutcome, string> = {
  PROVISIONED: METRIC.provisioned,
  ADOPTED: METRIC.adopted,
  DELETE_REQUESTED: METRIC.deleted,
  DELETED: METRIC.deleted,
  DEAD_LETTERED: METRIC.deadLettered,
  REJECTED: METRIC.rejected,
};

interface AtlasResult {
  outcome: Extract<RecordOutcome, 'PROVISIONED' | 'ADOPTED' | 'DELETE_REQUESTED' | 'DELETED'>;
  status: LedgerStatus;
  endpointId?: string;
  atlasErrorMessage?: string;
}

/** One delivery of one record. */
interface Attempt {
  record: SQSRecord;
  attempt: number;
  owner: string;
  logger: Logger;
  request?: ProvisionRequest;
  /** The ledger item while this attempt holds its lease. */
  claimed?: LedgerItem;
}

type Parsed = { ok: true; request: ProvisionRequest } | { ok: false; error: unknown };

const parse = (body: string): Parsed => {
  try {
    return { ok: true, request: parseRequest(body) };
  } catch (error) {
    return { ok: false, error };
  }
};

const vpcRegion = (e: { regionName: string; vpcRegionName?: string }) => e.vpcRegionName ?? e.regionName;

const fromEndpoint = (endpoint: AtlasEndpoint) => ({
  endpointId: endpoint.id,
  status: endpoint.status,
  ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
});

export class Provisioner {
  readonly #o: ProvisionerOptions;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #keys = new KeyedLock();
  readonly #limit: Limiter;

  constructor(options: ProvisionerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#random = options.random ?? Math.random;
    this.#limit = new Limiter(options.recordConcurrency);
  }

  /**
   * The batch record handler. Resolves with the outcome when the record is done or safely
   * parked; throws (after delaying the record's next delivery) when it must be retried.
   */
  handleRecord = (record: SQSRecord): Promise<RecordOutcome> => {
    const parsed = parse(record.body);
    const run = () => this.#limit.run(() => this.#handle(record, parsed));
    return parsed.ok ? this.#keys.run(naturalKey(parsed.request), run) : run();
  };

  async #handle(record: SQSRecord, parsed: Parsed): Promise<RecordOutcome> {
    const requestId = parsed.ok
      ? parsed.request.requestId
      : parsed.error instanceof InvalidRequestError
        ? parsed.error.requestId
        : undefined;
    const at: Attempt = {
      record,
      attempt: Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1),
      owner: `${record.messageId}/${randomUUID()}`,
      logger: this.#o.logger.createChild({
        persistentKeys: { messageId: record.messageId, ...(requestId !== undefined && { requestId }) },
      }),
    };
    this.#o.metrics.addMetric(METRIC.requests, MetricUnit.Count, 1);
    try {
      if (!parsed.ok) throw parsed.error;
      return await this.#provision(at, parsed.request);
    } catch (error) {
      return this.#fail(at, error);
    }
  }

  async #provision(at: Attempt, request: ProvisionRequest): Promise<RecordOutcome> {
    at.request = request;
    assertProfileAllowed(request.profile, this.#o.allowedProfiles);
    const claimed = await this.#o.ledger.claim(request, at.owner, this.#o.leaseSeconds);
    at.claimed = claimed;
    const result =
      request.action === 'create'
        ? await this.#create(request, claimed)
        : await this.#delete(request, claimed);
    const settled = await this.#o.ledger.settle(claimed, at.owner, {
      status: result.status,
      ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
      ...(result.atlasErrorMessage !== undefined && { atlasErrorMessage: result.atlasErrorMessage }),
    });
    at.claimed = undefined;
    await this.#o.events.publish(
      this.#detail(result.outcome, at, request, {
        ...(settled.endpointId !== undefined && { endpointId: settled.endpointId }),
        status: settled.status,
        ...(claimed.status !== settled.status && { previousStatus: claimed.status }),
        ...(settled.atlasErrorMessage !== undefined && { errorMessage: settled.atlasErrorMessage }),
        statusSince: settled.statusSince,
      }),
    );
    this.#o.metrics.addMetric(OUTCOME_METRIC[result.outcome], MetricUnit.Count, 1);
    at.logger.info('request done', {
      outcome: result.outcome,
      naturalKey: claimed.key,
      endpointId: settled.endpointId,
      status: settled.status,
    });
    return result.outcome;
  }

  /** Adopts what the ledger or a listing knows, else creates; a 409 is resolved by listing again. */
  async #create(request: ProvisionRequest, claimed: LedgerItem): Promise<AtlasResult> {
    if (claimed.endpointId !== undefined && !GONE.has(claimed.status)) {
      return {
        outcome: 'ADOPTED',
        endpointId: claimed.endpointId,
        status: claimed.status,
        ...(claimed.atlasErrorMessage !== undefined && { atlasErrorMessage: claimed.atlasErrorMessage }),
      };
    }
    return this.#o.atlas.withClient(request.profile, async (client) => {
      // Listing first also covers "created, but the response was lost" on an earlier attempt.
      const existing = await this.#find(client, request, false);
      if (existing) return { outcome: 'ADOPTED', ...fromEndpoint(existing) };
      try {
        const created = await client.createEndpoint(request.groupId, {
          cloudProvider: request.cloudProvider,
          regionName: request.regionName,
          ...(request.vpcRegionName !== undefined && { vpcRegionName: request.vpcRegionName }),
        });
        return { outcome: 'PROVISIONED', ...fromEndpoint(created) };
      } catch (error) {
        if (!(error instanceof AtlasApiError && error.status === 409)) throw error;
        const found = await this.#find(client, request, false);
        if (found) return { outcome: 'ADOPTED', ...fromEndpoint(found) };
        throw new ConflictUnresolvedError(naturalKey(request));
      }
    });
  }

  /** Deletes the key's endpoint; one that is already gone (404, or none listed) counts as deleted. */
  async #delete(request: ProvisionRequest, claimed: LedgerItem): Promise<AtlasResult> {
    if (claimed.endpointId !== undefined && claimed.status === 'DELETING') {
      return { outcome: 'DELETE_REQUESTED', endpointId: claimed.endpointId, status: 'DELETING' };
    }
    const known =
      claimed.endpointId !== undefined && !GONE.has(claimed.status) ? claimed.endpointId : undefined;
    return this.#o.atlas.withClient(request.profile, async (client) => {
      let endpointId = known;
      try {
        if (endpointId === undefined) {
          const found = await this.#find(client, request, true);
          if (!found) return { outcome: 'DELETED', status: 'DELETED' };
          if (found.status === 'DELETING')
            return { outcome: 'DELETE_REQUESTED', endpointId: found.id, status: 'DELETING' };
          endpointId = found.id;
        }
        await client.deleteEndpoint(request.groupId, request.cloudProvider, endpointId);
        return { outcome: 'DELETE_REQUESTED', endpointId, status: 'DELETING' };
      } catch (error) {
        if (!(error instanceof AtlasApiError && error.status === 404)) throw error;
        return { outcome: 'DELETED', status: 'DELETED', ...(endpointId !== undefined && { endpointId }) };
      }
    });
  }

  /** The listed endpoint for the request's key, if any; one being deleted only when asked for. */
  async #find(client: EndpointsApi, request: ProvisionRequest, includeDeleting: boolean) {
    const listed = await client.listEndpoints(request.groupId, request.cloudProvider);
    const matching = listed.filter(
      (e) =>
        e.regionName === request.regionName &&
        vpcRegion(e) === vpcRegion(request) &&
        (includeDeleting || e.status !== 'DELETING'),
    );
    return matching.find((e) => e.status !== 'DELETING') ?? matching[0];
  }

  /**
   * The one path of every failure: describeFailure decides; a retry delays the record and
   * rethrows so the batch reports it; dlq and reject announce, park the original body and resolve.
   */
  async #fail(at: Attempt, error: unknown): Promise<RecordOutcome> {
    const failure = describeFailure(error);
    const now = this.#now().toISOString();
    let firstFailureAt: string | undefined;
    if (at.claimed) {
      try {
        firstFailureAt = (await this.#o.ledger.recordFailure(at.claimed.key, at.owner, failure))
          .firstFailureAt;
      } catch (ledgerError) {
        at.logger.warn('could not record the failure in the ledger', { error: ledgerError });
      }
    }
    const lastAttempt = at.attempt >= this.#o.maxAttempts;
    const log = {
      failure,
      attempt: at.attempt,
      ...(failure.code === 'INTERNAL_ERROR' && { error }),
    };

    if (failure.disposition === 'retry' && !lastAttempt) {
      const delaySeconds = retryDelaySeconds(failure, at.attempt, this.#o.backoff, this.#random);
      try {
        await this.#o.queues.delay(at.record.receiptHandle, delaySeconds);
      } catch (sqsError) {
        // The record still comes back, after the queue's own visibility timeout.
        at.logger.warn('could not delay the retry', { error: sqsError });
      }
      this.#o.metrics.addMetric(METRIC.retried, MetricUnit.Count, 1);
      at.logger.warn('request will be retried', { ...log, delaySeconds });
      throw error;
    }

    const destination = failure.disposition === 'reject' ? 'reject' : 'dlq';
    const requestId =
      at.request?.requestId ?? (error instanceof InvalidRequestError ? error.requestId : undefined);
    const outcome = destination === 'reject' ? 'REJECTED' : 'DEAD_LETTERED';
    // Announced before parked: a failed publish retries a record not parked yet, while parking
    // first would park it again on every redelivery. Events are at least once.
    await this.#o.events.publish(
      this.#detail(outcome, at, at.request, { error: errorSummary(failure) }, requestId),
    );
    await this.#o.queues.park(destination, at.record.body, {
      failure,
      attempts: at.attempt,
      firstFailureAt: firstFailureAt ?? this.#firstFailureFallback(at, now),
      lastFailureAt: now,
      ...(requestId !== undefined && { requestId }),
    });
    this.#o.metrics.addMetric(OUTCOME_METRIC[outcome], MetricUnit.Count, 1);
    at.logger.error(destination === 'reject' ? 'request rejected' : 'request sent to the dead-letter queue', {
      ...log,
      outcome,
    });
    return outcome;
  }

  /** Without a ledger record, a redelivered message failed first when it was first received. */
  #firstFailureFallback(at: Attempt, now: string): string {
    const first = Number(at.record.attributes.ApproximateFirstReceiveTimestamp);
    return at.attempt > 1 && Number.isFinite(first) && first > 0 ? new Date(first).toISOString() : now;
  }

  #detail(
    outcome: RecordOutcome,
    at: Attempt,
    request: ProvisionRequest | undefined,
    extra: Partial<StatusChangedDetail>,
    requestId = request?.requestId,
  ): StatusChangedDetail {
    return {
      version: '1',
      outcome,
      requestIds: requestId !== undefined ? [requestId] : [],
      messageId: at.record.messageId,
      ...(request && {
        naturalKey: naturalKey(request),
        groupId: request.groupId,
        cloudProvider: request.cloudProvider,
        regionName: request.regionName,
        ...(request.vpcRegionName !== undefined && { vpcRegionName: request.vpcRegionName }),
        action: request.action,
      }),
      ...extra,
      occurredAt: this.#now().toISOString(),
    };
  }
}

const errorSummary = (failure: FailureInfo): NonNullable<StatusChangedDetail['error']> => ({
  code: failure.code,
  ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
  detail: failure.detail,
});
