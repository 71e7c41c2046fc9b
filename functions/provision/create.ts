/**
 * The create action. One endpoint per natural key, whatever Atlas does: a create is written down
 * before it is sent, and a create whose outcome is unknown is never sent again until a listing
 * taken after the settle period shows no endpoint for the key; an extra endpoint that such a
 * create made is deleted; a FAILED endpoint is deleted and created anew, a bounded number of times.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AtlasEndpoint } from '#atlas/types.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import {
  endpointFailuresToday,
  freshUnconfirmedCreates as freshUnconfirmed,
  type LeaseFields,
  type LedgerItem,
  MAX_ENDPOINT_FAILURES_PER_DAY,
  MAX_UNCONFIRMED_CREATES,
} from '#ledger/ledger.ts';
import {
  AtlasApiError,
  ConflictUnresolvedError,
  CreateInDoubtError,
  DeadlineError,
  EndpointFailedError,
  EndpointRecreatingError,
  isEndpointNotFound,
  WaitsExhaustedError,
} from '#lib/errors.ts';
import { MAX_MESSAGE_DELAY_SECONDS } from '#messages/queues.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS } from '#runtime/timing.ts';
import { duplicateEvent } from './answers.ts';
import { bounded, GONE, listKey, timeLeft } from './attempt.ts';
import type { AtlasResult, Attempt, ProvisionContext, RequestApi } from './types.ts';

const fromEndpoint = (endpoint: AtlasEndpoint) => ({
  endpointId: endpoint.id,
  status: endpoint.status,
  ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
});

/** Creates the key's endpoint, or adopts the one Atlas has; never twice, never a FAILED one. */
export async function create(
  ctx: ProvisionContext,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
): Promise<AtlasResult> {
  const key = claimed.key;
  if (claimed.pendingCreate) {
    const readyAt = Date.parse(claimed.pendingCreate.sentAt) + ctx.createSettleSeconds * 1000;
    const waitSeconds = Math.ceil((readyAt - ctx.now().getTime()) / 1000);
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
  return ctx.atlas.withClient(request.profile, async (unbounded) => {
    const client = bounded(ctx, unbounded, at);
    const listed = await listKey(client, request);
    if (claimed.recreating && listed.some((e) => e.id === claimed.endpointId && e.status === 'DELETING')) {
      throw new EndpointRecreatingError(key, recreateWait(ctx, at));
    }
    const live = listed.filter((e) => e.status !== 'DELETING');
    if (claimed.pendingCreate) at.listedAfterSettle = live;
    if (live.length > 0) return adopt(ctx, at, client, request, claimed, live);
    // A create whose outcome the request could not wait for is never sent (fail: a create in doubt waits).
    if (at.waits >= ctx.maxWaits) throw new WaitsExhaustedError(key, at.waits);

    // Nothing listed after the settle period: a create in doubt was not done (yet). Remembered,
    // so that an endpoint it makes later is known as this provisioner's own extra.
    const unconfirmed = claimed.pendingCreate
      ? [...freshUnconfirmed(claimed, ctx.now()), claimed.pendingCreate.sentAt].slice(
          -MAX_UNCONFIRMED_CREATES,
        )
      : undefined;
    const fields: Partial<LeaseFields> = {
      ...(unconfirmed && { unconfirmedCreates: unconfirmed }),
      ...(claimed.recreating && { recreating: undefined }),
    };
    if (timeLeft(at) - CALL_MARGIN_MS < ctx.atlasTimeoutMs) throw new DeadlineError('send a create');
    // The create binds the key to its profile: a request naming another is refused from now on.
    await ctx.ledger.amend(key, at.owner, {
      ...fields,
      pendingCreate: { sentAt: ctx.now().toISOString() },
      profile: request.profile,
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
      return adopt(ctx, at, client, request, { ...claimed, ...fields, pendingCreate: undefined }, found);
    }
    if (created.status === 'FAILED') return recreate(ctx, at, client, request, claimed, created, fields);
    return { outcome: 'PROVISIONED', ...fromEndpoint(created), fields };
  });
}

/**
 * Adopts one of the key's live endpoints: the ledger's own, else an ACTIVE one, else the first.
 * Extras that creates in doubt can account for are deleted; any other extra is reported and left.
 */
async function adopt(
  ctx: ProvisionContext,
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
  const unconfirmed = freshUnconfirmed(claimed, ctx.now());
  const events: StatusChangedDetail[] = [];
  let fields: Partial<LeaseFields> = {};
  if (extras.length > 0) {
    const resolved = await resolveExtras(ctx, at, client, request, claimed, keep, extras, unconfirmed);
    events.push(...resolved.events);
    fields = { unconfirmedCreates: resolved.unconfirmed.length > 0 ? resolved.unconfirmed : undefined };
  } else if (claimed.pendingCreate && unconfirmed.length > 0) {
    // The doubt is resolved by this endpoint; older unconfirmed creates stay remembered.
    fields = { unconfirmedCreates: unconfirmed };
  }
  if (claimed.recreating) fields.recreating = undefined;
  if (keep.status === 'FAILED') return recreate(ctx, at, client, request, claimed, keep, fields, events);
  return { outcome: 'ADOPTED', ...fromEndpoint(keep), fields, events };
}

/** Deletes the extras this provisioner's creates in doubt account for; reports the rest. */
async function resolveExtras(
  ctx: ProvisionContext,
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
    ctx.metrics.addMetric(METRIC.duplicateEndpoints, MetricUnit.Count, extras.length);
    at.logger.error('more than one endpoint for the key, not all made by this provisioner', {
      naturalKey: claimed.key,
      kept: keep.id,
      extras: extras.map((e) => e.id),
    });
    for (const extra of extras)
      events.push(duplicateEvent(ctx, 'DUPLICATE_FOUND', at, request, claimed, extra));
    return { events, unconfirmed };
  }
  for (const extra of extras) {
    await deleteIfThere(client, request, extra.id);
    at.logger.warn('deleted an extra endpoint made by a create in doubt', {
      naturalKey: claimed.key,
      kept: keep.id,
      deleted: extra.id,
    });
    events.push(duplicateEvent(ctx, 'DUPLICATE_DELETED', at, request, claimed, extra));
  }
  // Each extra deleted was one of the unconfirmed creates (the oldest first).
  return { events, unconfirmed: unconfirmed.slice(Math.min(unconfirmed.length, extras.length)) };
}

/**
 * A FAILED endpoint is deleted to be created anew once it is gone, or, past the bound, the
 * request goes to the DLQ with Atlas's errorMessage.
 */
async function recreate(
  ctx: ProvisionContext,
  at: Attempt,
  client: RequestApi,
  request: ProvisionRequest,
  claimed: LedgerItem,
  failed: AtlasEndpoint,
  fields: Partial<LeaseFields>,
  events: StatusChangedDetail[] = [],
): Promise<AtlasResult> {
  const failures = (claimed.endpointFailures ?? 0) + 1;
  // Bounded per lifecycle (maxEndpointFailures) and per day, whatever replays or new lifecycles do.
  const failedAt = [...endpointFailuresToday(claimed, ctx.now()), ctx.now().toISOString()].slice(
    -MAX_ENDPOINT_FAILURES_PER_DAY,
  );
  const perDay = failedAt.length >= MAX_ENDPOINT_FAILURES_PER_DAY;
  if (failures >= ctx.maxEndpointFailures || perDay) {
    // Left standing for an operator: the ledger says what stands, so nothing reads it as gone.
    // The lifecycle's count starts again: replaying the request is the operator's decision to try
    // anew (the day's failures still count).
    await ctx.ledger.amend(claimed.key, at.owner, {
      ...fields,
      endpointFailures: undefined,
      endpointFailedAt: failedAt,
      recreating: undefined,
      status: 'FAILED',
      endpointId: failed.id,
      ...(claimed.status !== 'FAILED' && { statusSince: ctx.now().toISOString() }),
      ...(failed.errorMessage !== undefined && { atlasErrorMessage: failed.errorMessage }),
    });
    throw new EndpointFailedError(
      claimed.key,
      perDay ? failedAt.length : failures,
      failed.errorMessage,
      perDay ? 'in the last 24 hours' : undefined,
    );
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
    fields: { ...fields, endpointFailures: failures, endpointFailedAt: failedAt, recreating: true },
    events,
    waitSeconds: recreateWait(ctx, at),
  };
}

/** Growing waits for a FAILED endpoint to go: the settle period, doubled per wait, capped. */
function recreateWait(ctx: ProvisionContext, at: Attempt): number {
  return Math.min(MAX_MESSAGE_DELAY_SECONDS, ctx.createSettleSeconds * 2 ** Math.min(at.waits, 6));
}

/** Deletes an endpoint; one Atlas says does not exist is as good (any other 404 is an operator's). */
async function deleteIfThere(client: RequestApi, request: ProvisionRequest, endpointId: string) {
  try {
    await client.deleteEndpoint(request.groupId, request.cloudProvider, endpointId);
  } catch (error) {
    if (!isEndpointNotFound(error)) throw error;
  }
}
