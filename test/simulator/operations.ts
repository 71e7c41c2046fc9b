/** The four backup private endpoint operations, carried out on the simulator's endpoint store. */
import type { ServerResponse } from 'node:http';
import type { CreateEndpointBody } from '#atlas/types.ts';
import { type Answer, apiError } from '#test/simulator/answers.ts';
import type { RecreatePlan } from '#test/simulator/endpoints.ts';
import type { SimulatorParts } from '#test/simulator/exchange.ts';
import type { SpecOperation } from '#test/simulator/spec.ts';

/** How perform() carries out a create: as asked, twice (doubleCreate), later (lateCreate), or to be recreated. */
export type CreateMode =
  | { kind: 'normal' }
  | { kind: 'double' }
  | { kind: 'recreate'; plan: RecreatePlan }
  | { kind: 'late'; landAt: number; res: ServerResponse };

/** The answer to a valid request, or 'held' for a lateCreate that answers nothing. */
export function perform(
  parts: SimulatorParts,
  operation: SpecOperation,
  groupId: string,
  endpointId: string | undefined,
  query: URLSearchParams,
  body: unknown,
  version: string,
  mode: CreateMode = { kind: 'normal' },
): Answer | 'held' {
  const { store } = parts;
  const ok = (status: number, value?: unknown): Answer => ({
    status,
    headers: value === undefined ? {} : { 'content-type': `application/vnd.atlas.${version}+json` },
    ...(value !== undefined && { body: value }),
  });
  const notFound = () =>
    apiError(
      404,
      'RESOURCE_NOT_FOUND',
      `Cannot find resource backup private endpoint ${endpointId} in project ${groupId}.`,
      { parameters: [{ endpointId }] },
    );
  switch (operation.operation) {
    case 'list': {
      const itemsPerPage = Number(query.get('itemsPerPage') ?? 100);
      const pageNum = Number(query.get('pageNum') ?? 1);
      const includeCount = query.get('includeCount') !== 'false';
      const all = store.list(groupId);
      const results = all.slice((pageNum - 1) * itemsPerPage, pageNum * itemsPerPage);
      const self = `${parts.baseUrl}/api/atlas/v2/groups/${groupId}/backup/AWS/privateEndpoints`;
      const page = (n: number) => `${self}?pageNum=${n}&itemsPerPage=${itemsPerPage}`;
      const links = [
        ...(pageNum > 1 ? [{ href: page(pageNum - 1), rel: 'previous' }] : []),
        { href: page(pageNum), rel: 'self' },
        ...(pageNum * itemsPerPage < all.length ? [{ href: page(pageNum + 1), rel: 'next' }] : []),
      ];
      const totalCount = parts.totalCountEstimate
        ? Math.max(0, Math.round(parts.totalCountEstimate(all.length)))
        : all.length;
      return ok(200, { links, results, ...(includeCount && { totalCount }) });
    }
    case 'create': {
      const request = body as CreateEndpointBody;
      const existing = store.conflicting(groupId, request);
      if (existing) {
        return apiError(
          409,
          'BACKUP_PRIVATE_ENDPOINT_ALREADY_EXISTS',
          `A backup private endpoint for ${request.regionName} (VPC region ${existing.vpcRegionName ?? request.regionName}) already exists in project ${groupId}: ${existing.id}.`,
          { parameters: [{ endpointId: existing.id }] },
        );
      }
      if (mode.kind === 'late') {
        parts.lateCreates.hold(mode.landAt, mode.res, () => store.create(groupId, request));
        return 'held';
      }
      const created = store.create(groupId, request, mode.kind === 'recreate' ? mode.plan : undefined);
      if (mode.kind === 'double') store.create(groupId, request);
      return ok(201, created);
    }
    case 'get': {
      const endpoint = endpointId ? store.get(groupId, endpointId) : undefined;
      return endpoint ? ok(200, endpoint) : notFound();
    }
    case 'delete':
      return endpointId && store.delete(groupId, endpointId) ? ok(204) : notFound();
  }
}
