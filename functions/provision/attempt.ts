/**
 * One attempt at a record, as every action sees it: what its message says, the time it has left,
 * the Atlas calls it may still start, and the metric each outcome counts.
 */
import type { AtlasEndpoint } from '#atlas/types.ts';
import type { LedgerStatus } from '#ledger/ledger.ts';
import { DeadlineError } from '#lib/errors.ts';
import { type ProvisionRequest, parseRequest } from '#messages/request.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { CALL_MARGIN_MS } from '#runtime/timing.ts';
import type { Attempt, EndpointsApi, ProvisionContext, RecordOutcome, RequestApi } from './types.ts';

/** The metric each outcome counts. */
export const OUTCOME_METRIC: Record<RecordOutcome, string> = {
  PROVISIONED: METRIC.provisioned,
  ADOPTED: METRIC.adopted,
  DELETE_REQUESTED: METRIC.deleted,
  DELETED: METRIC.deleted,
  RELEASED: METRIC.released,
  SUPERSEDED: METRIC.superseded,
  RECREATING: METRIC.recreating,
  WAITING: METRIC.waiting,
  FOLLOWED: METRIC.followUps,
  FOLLOW_UP_DROPPED: METRIC.followUpsDropped,
  DEAD_LETTERED: METRIC.deadLettered,
  REJECTED: METRIC.rejected,
};

/** Ledger statuses that mean no endpoint to adopt or delete. */
export const GONE: ReadonlySet<LedgerStatus> = new Set(['REQUESTED', 'DELETING', 'DELETED', 'MISSING']);

export type Parsed = { ok: true; request: ProvisionRequest } | { ok: false; error: unknown };

/** The record's request, or why it is none. */
export const parse = (body: string): Parsed => {
  try {
    return { ok: true, request: parseRequest(body) };
  } catch (error) {
    return { ok: false, error };
  }
};

/** Milliseconds left before the attempt's deadline. */
export function timeLeft(at: Attempt): number {
  return at.deadline - Date.now();
}

/** The Atlas client bounded by the invocation: no call starts that could outlive it. */
export function bounded(ctx: ProvisionContext, client: EndpointsApi, at: Attempt): RequestApi {
  const options = (what: string) => {
    const left = timeLeft(at) - CALL_MARGIN_MS;
    if (left < ctx.atlasTimeoutMs) throw new DeadlineError(what);
    return Number.isFinite(left) ? { signal: AbortSignal.timeout(left) } : {};
  };
  return {
    listEndpoints: (groupId, provider) =>
      client.listEndpoints(groupId, provider, options('list the endpoints')),
    createEndpoint: (groupId, body) => client.createEndpoint(groupId, body, options('send a create')),
    deleteEndpoint: (groupId, provider, id) =>
      client.deleteEndpoint(groupId, provider, id, options('delete an endpoint')),
  };
}

const vpcRegion = (e: { regionName: string; vpcRegionName?: string }) => e.vpcRegionName ?? e.regionName;

/** Every listed endpoint of the request's key, in any status. */
export async function listKey(
  client: Pick<RequestApi, 'listEndpoints'>,
  request: ProvisionRequest,
): Promise<AtlasEndpoint[]> {
  const listed = await client.listEndpoints(request.groupId, request.cloudProvider);
  return listed.filter((e) => e.regionName === request.regionName && vpcRegion(e) === vpcRegion(request));
}
