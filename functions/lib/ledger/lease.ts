/**
 * The provisioner's writes, each under the key's lease: claiming it (a conditional write that
 * serialises every worker on a key), bookkeeping while it is held, and giving it up by releasing
 * it, settling the request or recording a failed attempt.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type AmendFields,
  type LedgerItem,
  NEVER_CHECKED,
  type SettleResult,
  UNTRACKED,
} from '#ledger/item.ts';
import { outboxUpdate } from '#ledger/outbox.ts';
import { ENDED, isTracked, nextApplied, nextRequesters, requesterOf } from '#ledger/rules.ts';
import { TRACKED } from '#ledger/schema.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';
import { EventsBackloggedError, type FailureInfo, KeyBusyError } from '#lib/errors.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';

/**
 * Takes the lease on the request's key for `leaseSeconds`, creating the item on first sight.
 * Throws KeyBusyError while another owner holds it. What the request asks for is recorded
 * only when it is answered (settle); its profile only on a new item, until a create binds one.
 */
export async function claim(
  table: TableHandle,
  request: ProvisionRequest,
  owner: string,
  leaseSeconds: number,
): Promise<LedgerItem> {
  const now = table.now();
  const iso = now.toISOString();
  try {
    const out = await table.client.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { key: naturalKey(request) },
        UpdateExpression:
          'SET lease = :lease, groupId = :g, cloudProvider = :c, regionName = :r, profile = if_not_exists(profile, :p), ' +
          '#action = if_not_exists(#action, :a), requesters = if_not_exists(requesters, :none), ' +
          'updatedAt = :now, createdAt = if_not_exists(createdAt, :now), #status = if_not_exists(#status, :requested), ' +
          'statusSince = if_not_exists(statusSince, :now), checkedAt = if_not_exists(checkedAt, :never)' +
          (request.vpcRegionName ? ', vpcRegionName = :v' : ''),
        ConditionExpression:
          'attribute_not_exists(lease) OR lease.expiresAt < :nowMs OR lease.#owner = :owner',
        ExpressionAttributeNames: { '#action': 'action', '#status': 'status', '#owner': 'owner' },
        ExpressionAttributeValues: {
          ':lease': { owner, expiresAt: now.getTime() + leaseSeconds * 1000 },
          ':g': request.groupId,
          ':c': request.cloudProvider,
          ':r': request.regionName,
          ':p': request.profile,
          ':a': request.action,
          ':none': {},
          ':now': iso,
          ':nowMs': now.getTime(),
          ':owner': owner,
          ':requested': 'REQUESTED',
          ':never': NEVER_CHECKED,
          ...(request.vpcRegionName && { ':v': request.vpcRegionName }),
        },
        ReturnValues: 'ALL_NEW',
        // The holder's lease tells the retry how long to wait, instead of spending attempts.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return fromRaw(out.Attributes ?? {});
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const expiresAt = error.Item?.lease?.M?.expiresAt?.N;
    const waitSeconds = expiresAt
      ? Math.max(1, Math.ceil((Number(expiresAt) - now.getTime()) / 1000))
      : undefined;
    throw new KeyBusyError(naturalKey(request), waitSeconds);
  }
}

/**
 * Writes provisioner bookkeeping while the owner holds the lease (a create about to be sent,
 * a doubt resolved, a FAILED endpoint counted). `undefined` removes a field.
 */
export async function amend(
  table: TableHandle,
  key: string,
  owner: string,
  fields: Partial<AmendFields>,
): Promise<LedgerItem> {
  // A create in doubt is visited by the checker, which reports an endpoint it made for a
  // request that is no longer running (e.g. parked in the DLQ).
  const set: string[] = ['updatedAt = :now', ...(fields.pendingCreate ? ['tracked = :tracked'] : [])];
  const remove: string[] = [];
  const names: Record<string, string> = { '#owner': 'owner' };
  const values: Record<string, unknown> = {
    ':now': table.now().toISOString(),
    ':owner': owner,
    ...(fields.pendingCreate && { ':tracked': TRACKED }),
  };
  for (const [i, [name, value]] of Object.entries(fields).entries()) {
    names[`#f${i}`] = name;
    if (value === undefined) remove.push(`#f${i}`);
    else {
      set.push(`#f${i} = :f${i}`);
      values[`:f${i}`] = value;
    }
  }
  const out = await table.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { key },
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: 'lease.#owner = :owner',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }),
  );
  return fromRaw(out.Attributes ?? {});
}

/** Releases the lease without recording anything: the request waits for Atlas. */
export async function release(table: TableHandle, key: string, owner: string): Promise<void> {
  await table.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { key },
      UpdateExpression: 'SET updatedAt = :now REMOVE lease',
      ConditionExpression: 'lease.#owner = :owner',
      ExpressionAttributeNames: { '#owner': 'owner' },
      ExpressionAttributeValues: { ':now': table.now().toISOString(), ':owner': owner },
    }),
  );
}

/**
 * Records the answer to a request: what Atlas now says of the key's endpoint, the request among
 * its requester's requestIds (rules.ts nextRequesters: the whole map is written, which under the
 * lease nobody else changes, and an item written before leaves its legacy `requestIds`), the
 * requester answered last, request order (the requester's applied request, rules.ts nextApplied,
 * and the lifecycle marker when the request starts one), the holds when given (none once the endpoint is gone), the events that
 * announce it (outbox); clears any failure and any create in doubt, and releases the lease.
 * Throws EventsBackloggedError, writing nothing and keeping the lease, when the outbox has no
 * room for the events (MAX_OUTBOX): the request is retried.
 */
export async function settle(
  table: TableHandle,
  claimed: LedgerItem,
  owner: string,
  result: SettleResult,
): Promise<LedgerItem> {
  const events = result.events ?? [];
  const { endpointId, atlasErrorMessage } = result;
  const tracked =
    isTracked({ status: result.status, endpointId, outbox: claimed.outbox }) || events.length > 0;
  // Under the lease nobody else adds to the outbox (only clears it): what the claim read holds at most.
  // An answer replaces nothing: each is a fact of its own (rules.ts statusSlot).
  const outbox = outboxUpdate(events, claimed.outbox !== undefined);
  if (!outbox.fits) throw new EventsBackloggedError(claimed.key);
  const fields = Object.entries(result.fields ?? {});
  // The key is bound to the profile of the request that leaves it an endpoint.
  const binds = endpointId !== undefined && !UNTRACKED.has(result.status);
  const holds = ENDED.has(result.status) ? [] : result.holds && [...new Set(result.holds)];
  const applied = nextApplied(claimed, result.request);
  const set = [
    '#status = :status',
    '#action = :action',
    'requesters = :requesters',
    'lastRequester = :requester',
    ...(applied !== undefined ? ['applied = :applied'] : []),
    ...(result.lifecycle !== undefined ? ['lifecycle = :lifecycle'] : []),
    ...(holds !== undefined && holds.length > 0 ? ['holds = :holds'] : []),
    'updatedAt = :now',
    'statusSince = :since',
    ...(endpointId !== undefined ? ['endpointId = :eid'] : []),
    ...(binds ? ['profile = :profile'] : []),
    ...(atlasErrorMessage !== undefined ? ['atlasErrorMessage = :msg'] : []),
    ...(tracked ? ['tracked = :tracked'] : []),
    ...fields.flatMap(([name, value]) => (value === undefined ? [] : [`${name} = :${name}`])),
    ...outbox.set,
  ];
  const remove = [
    'lease',
    'requestIds',
    ...(holds !== undefined && holds.length === 0 ? ['holds'] : []),
    'lastError',
    'firstFailureAt',
    'pendingCreate',
    ...(tracked ? [] : ['tracked']),
    ...(atlasErrorMessage === undefined ? ['atlasErrorMessage'] : []),
    ...(endpointId === undefined && UNTRACKED.has(result.status) ? ['endpointId'] : []),
    ...(claimed.status !== result.status ? ['stuckAt'] : []),
    ...fields.flatMap(([name, value]) => (value === undefined && name !== 'pendingCreate' ? [name] : [])),
  ];
  const sent = table.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { key: claimed.key },
      UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
      ConditionExpression: `lease.#owner = :owner${outbox.condition ? ` AND ${outbox.condition}` : ''}`,
      ExpressionAttributeNames: {
        '#status': 'status',
        '#owner': 'owner',
        '#action': 'action',
        ...outbox.names,
      },
      ExpressionAttributeValues: {
        ':status': result.status,
        ':action': result.request.action,
        ':requesters': nextRequesters(claimed, result.request),
        ':requester': requesterOf(result.request),
        ...(applied !== undefined && { ':applied': applied }),
        ...(result.lifecycle !== undefined && { ':lifecycle': result.lifecycle }),
        ...(holds !== undefined && holds.length > 0 && { ':holds': holds }),
        ':now': table.now().toISOString(),
        ':since': result.statusSince,
        ':owner': owner,
        ...(endpointId !== undefined && { ':eid': endpointId }),
        ...(binds && { ':profile': result.request.profile }),
        ...(atlasErrorMessage !== undefined && { ':msg': atlasErrorMessage }),
        ...(tracked && { ':tracked': TRACKED }),
        ...Object.fromEntries(
          fields.flatMap(([name, value]) => (value === undefined ? [] : [[`:${name}`, value]])),
        ),
        ...outbox.values,
      },
      ReturnValues: 'ALL_NEW',
      // Which condition failed: the lease, or the outbox's room.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    }),
  );
  const out = await sent.catch((error: unknown) => {
    const stillOurs =
      error instanceof ConditionalCheckFailedException && error.Item?.lease?.M?.owner?.S === owner;
    throw stillOurs ? new EventsBackloggedError(claimed.key) : error;
  });
  return fromRaw(out.Attributes ?? {});
}

/**
 * Records a failed attempt and releases the lease so a retry (or another worker) can claim the
 * key. `resolvedCreate`: this attempt's create got an answer (a 4xx, a 429), so it is not in doubt.
 */
export async function recordFailure(
  table: TableHandle,
  key: string,
  owner: string,
  failure: FailureInfo,
  options: { resolvedCreate?: boolean },
): Promise<LedgerItem> {
  const iso = table.now().toISOString();
  const lastError = {
    code: failure.code,
    detail: failure.detail,
    at: iso,
    ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
  };
  const out = await table.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { key },
      UpdateExpression:
        'SET lastError = :err, updatedAt = :now, firstFailureAt = if_not_exists(firstFailureAt, :now) REMOVE lease' +
        (options.resolvedCreate ? ', pendingCreate' : ''),
      ConditionExpression: 'lease.#owner = :owner',
      ExpressionAttributeNames: { '#owner': 'owner' },
      ExpressionAttributeValues: { ':err': lastError, ':now': iso, ':owner': owner },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return fromRaw(out.Attributes ?? {});
}
