/**
 * The ledger: one DynamoDB item per natural key (project, provider, region, VPC region). It is
 * how the provisioner guarantees at most one endpoint per key (a lease claimed with a
 * conditional write serialises every worker on a key, and a create is written down before it is
 * sent), what the status checker reads, and the outbox of the status events it records.
 *
 * Table (ledger-schema.ts): partition key `key` (string). Sparse index `byCheck`: partition
 * `tracked` ("OPEN" on items the checker visits: a followed endpoint, or events still to
 * announce), sort `checkedAt`.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { listTracked, recordCheck } from '#ledger/check.ts';
import {
  type AmendFields,
  type CheckResult,
  type LedgerItem,
  type LedgerStatus,
  NEVER_CHECKED,
  type SettleResult,
  UNTRACKED,
} from '#ledger/item.ts';
import { clearOutbox, outboxUpdate } from '#ledger/outbox.ts';
import { isTracked, nextRequestIds } from '#ledger/rules.ts';
import { TRACKED } from '#ledger/schema.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';
import { type FailureInfo, KeyBusyError } from '#lib/errors.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';

export * from '#ledger/item.ts';
export * from '#ledger/rules.ts';

export interface LedgerOptions {
  tableName: string;
  client?: DynamoDBDocumentClient;
  now?: () => Date;
}

const defaultClient = () =>
  DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });

export class Ledger {
  readonly #table: TableHandle;

  constructor(options: LedgerOptions) {
    this.#table = {
      client: options.client ?? defaultClient(),
      tableName: options.tableName,
      now: options.now ?? (() => new Date()),
    };
  }

  async get(key: string): Promise<LedgerItem | undefined> {
    const out = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: { key }, ConsistentRead: true }),
    );
    return out.Item ? fromRaw(out.Item) : undefined;
  }

  /**
   * Takes the lease on the request's key for `leaseSeconds`, creating the item on first sight.
   * Throws KeyBusyError while another owner holds it. What the request asks for is recorded
   * only when it is answered (settle).
   */
  async claim(request: ProvisionRequest, owner: string, leaseSeconds: number): Promise<LedgerItem> {
    const now = this.#table.now();
    const iso = now.toISOString();
    try {
      const out = await this.#table.client.send(
        new UpdateCommand({
          TableName: this.#table.tableName,
          Key: { key: naturalKey(request) },
          UpdateExpression:
            'SET lease = :lease, groupId = :g, cloudProvider = :c, regionName = :r, profile = :p, ' +
            '#action = if_not_exists(#action, :a), requestIds = if_not_exists(requestIds, :none), ' +
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
            ':none': [],
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
  async amend(key: string, owner: string, fields: Partial<AmendFields>): Promise<LedgerItem> {
    // A create in doubt is visited by the checker, which reports an endpoint it made for a
    // request that is no longer running (e.g. parked in the DLQ).
    const set: string[] = ['updatedAt = :now', ...(fields.pendingCreate ? ['tracked = :tracked'] : [])];
    const remove: string[] = [];
    const names: Record<string, string> = { '#owner': 'owner' };
    const values: Record<string, unknown> = {
      ':now': this.#table.now().toISOString(),
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
    const out = await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
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
  async release(key: string, owner: string): Promise<void> {
    await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: { key },
        UpdateExpression: 'SET updatedAt = :now REMOVE lease',
        ConditionExpression: 'lease.#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':now': this.#table.now().toISOString(), ':owner': owner },
      }),
    );
  }

  /**
   * Records the answer to a request: what Atlas now says of the key's endpoint, the request among
   * the key's requestIds, the events that announce it (outbox); clears any failure and any create
   * in doubt, and releases the lease.
   */
  async settle(claimed: LedgerItem, owner: string, result: SettleResult): Promise<LedgerItem> {
    const events = result.events ?? [];
    const { endpointId, atlasErrorMessage } = result;
    const tracked =
      isTracked({ status: result.status, endpointId, outbox: claimed.outbox }) || events.length > 0;
    // Under the lease nobody else adds to the outbox: what the claim read is current.
    const outbox = outboxUpdate(events, claimed.outbox !== undefined);
    const fields = Object.entries(result.fields ?? {});
    const set = [
      '#status = :status',
      '#action = :action',
      'requestIds = :rids',
      'updatedAt = :now',
      'statusSince = :since',
      ...(endpointId !== undefined ? ['endpointId = :eid'] : []),
      ...(atlasErrorMessage !== undefined ? ['atlasErrorMessage = :msg'] : []),
      ...(tracked ? ['tracked = :tracked'] : []),
      ...fields.flatMap(([name, value]) => (value === undefined ? [] : [`${name} = :${name}`])),
      ...outbox.set,
    ];
    const remove = [
      'lease',
      'lastError',
      'firstFailureAt',
      'pendingCreate',
      ...(tracked ? [] : ['tracked']),
      ...(atlasErrorMessage === undefined ? ['atlasErrorMessage'] : []),
      ...(endpointId === undefined && UNTRACKED.has(result.status) ? ['endpointId'] : []),
      ...(claimed.status !== result.status ? ['stuckAt'] : []),
      ...fields.flatMap(([name, value]) => (value === undefined && name !== 'pendingCreate' ? [name] : [])),
    ];
    const out = await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: { key: claimed.key },
        UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
        ConditionExpression: 'lease.#owner = :owner',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#owner': 'owner',
          '#action': 'action',
          ...outbox.names,
        },
        ExpressionAttributeValues: {
          ':status': result.status,
          ':action': result.request.action,
          ':rids': nextRequestIds(claimed, result.request),
          ':now': this.#table.now().toISOString(),
          ':since': result.statusSince,
          ':owner': owner,
          ...(endpointId !== undefined && { ':eid': endpointId }),
          ...(atlasErrorMessage !== undefined && { ':msg': atlasErrorMessage }),
          ...(tracked && { ':tracked': TRACKED }),
          ...Object.fromEntries(
            fields.flatMap(([name, value]) => (value === undefined ? [] : [[`:${name}`, value]])),
          ),
          ...outbox.values,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return fromRaw(out.Attributes ?? {});
  }

  /**
   * Records a failed attempt and releases the lease so a retry (or another worker) can claim the
   * key. `resolvedCreate`: this attempt's create got an answer (a 4xx, a 429), so it is not in doubt.
   */
  async recordFailure(
    key: string,
    owner: string,
    failure: FailureInfo,
    options: { resolvedCreate?: boolean } = {},
  ): Promise<LedgerItem> {
    const iso = this.#table.now().toISOString();
    const lastError = {
      code: failure.code,
      detail: failure.detail,
      at: iso,
      ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
    };
    const out = await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
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

  /** One page of items the checker visits, least recently checked first. */
  listTracked(options: { limit: number; startKey?: Record<string, unknown> }) {
    return listTracked(this.#table, options);
  }

  /** Records a status check and its events, unless the item moved on since it was read. */
  recordCheck(
    key: string,
    expectedStatus: LedgerStatus,
    result: CheckResult,
    outboxExists = false,
    readUpdatedAt?: string,
  ): Promise<LedgerItem | undefined> {
    return recordCheck(this.#table, key, expectedStatus, result, outboxExists, readUpdatedAt);
  }

  /** Removes events EventBridge accepted from the key's outbox. */
  clearOutbox(key: string, eventIds: readonly string[]): Promise<void> {
    return clearOutbox(this.#table, key, eventIds);
  }
}
