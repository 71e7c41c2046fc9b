/**
 * The ledger: one DynamoDB item per natural key (project, provider, region, VPC region). It is
 * how the provisioner guarantees at most one endpoint per key (a lease claimed with a
 * conditional write serialises every worker on a key), and what the status checker reads.
 *
 * Table: partition key `key` (string). Sparse index `byCheck`: partition `tracked` ("OPEN" on
 * items whose endpoint the checker follows), sort `checkedAt` (ISO time of the last check).
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AtlasStatus } from '#atlas/types.ts';
import { type FailureInfo, KeyBusyError } from '#lib/errors.ts';
import { naturalKey, type ProvisionRequest } from '#lib/request.ts';

export const TRACKED = 'OPEN';
export const CHECK_INDEX = 'byCheck';
export const NEVER_CHECKED = '1970-01-01T00:00:00.000Z';

/** Atlas statuses, plus the ledger's own: REQUESTED (claimed, no endpoint yet), DELETED, MISSING. */
export type LedgerStatus = AtlasStatus | 'REQUESTED' | 'DELETED' | 'MISSING';

/** Statuses after which the checker stops following an endpoint. ACTIVE stays followed, for drift. */
const UNTRACKED: ReadonlySet<string> = new Set(['REQUESTED', 'DELETED', 'MISSING', 'FAILED']);

export interface LedgerItem {
  key: string;
  groupId: string;
  cloudProvider: string;
  regionName: string;
  vpcRegionName?: string;
  profile: string;
  action: 'create' | 'delete';
  /** Every requestId that asked for this key (a set: redeliveries do not repeat). */
  requestIds: string[];
  status: LedgerStatus;
  statusSince: string;
  endpointId?: string;
  atlasErrorMessage?: string;
  /** Set once when the checker reports the endpoint stuck past its deadline. */
  stuckAt?: string;
  tracked?: typeof TRACKED;
  checkedAt: string;
  createdAt: string;
  updatedAt: string;
  lastError?: { code: string; httpStatus?: number; detail: string; at: string };
  firstFailureAt?: string;
  lease?: { owner: string; expiresAt: number };
}

export interface LedgerOptions {
  tableName: string;
  client?: DynamoDBDocumentClient;
  now?: () => Date;
}

const defaultClient = () =>
  DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });

interface Raw extends Omit<LedgerItem, 'requestIds'> {
  requestIds?: Set<string>;
}

const fromRaw = (raw: Record<string, unknown>): LedgerItem => {
  const { requestIds, ...rest } = raw as unknown as Raw;
  return { ...rest, requestIds: [...(requestIds ?? [])].sort() };
};

export class Ledger {
  readonly #table: string;
  readonly #db: DynamoDBDocumentClient;
  readonly #now: () => Date;

  constructor(options: LedgerOptions) {
    this.#table = options.tableName;
    this.#db = options.client ?? defaultClient();
    this.#now = options.now ?? (() => new Date());
  }

  async get(key: string): Promise<LedgerItem | undefined> {
    const out = await this.#db.send(
      new GetCommand({ TableName: this.#table, Key: { key }, ConsistentRead: true }),
    );
    return out.Item ? fromRaw(out.Item) : undefined;
  }

  /**
   * Takes the lease on the request's key for `leaseSeconds`, creating the item on first sight,
   * and records the requestId and action. Throws KeyBusyError while another owner holds it.
   */
  async claim(request: ProvisionRequest, owner: string, leaseSeconds: number): Promise<LedgerItem> {
    const now = this.#now();
    const iso = now.toISOString();
    try {
      const out = await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { key: naturalKey(request) },
          UpdateExpression:
            'SET lease = :lease, groupId = :g, cloudProvider = :c, regionName = :r, profile = :p, #action = :a, ' +
            'updatedAt = :now, createdAt = if_not_exists(createdAt, :now), #status = if_not_exists(#status, :requested), ' +
            'statusSince = if_not_exists(statusSince, :now), checkedAt = if_not_exists(checkedAt, :never)' +
            (request.vpcRegionName ? ', vpcRegionName = :v' : '') +
            ' ADD requestIds :rid',
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
            ':now': iso,
            ':nowMs': now.getTime(),
            ':owner': owner,
            ':requested': 'REQUESTED',
            ':never': NEVER_CHECKED,
            ':rid': new Set([request.requestId]),
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

  /** Records what Atlas now says of the claimed key's endpoint, clears any failure, and releases the lease. */
  async settle(
    claimed: LedgerItem,
    owner: string,
    result: { status: LedgerStatus; endpointId?: string; atlasErrorMessage?: string },
  ): Promise<LedgerItem> {
    const iso = this.#now().toISOString();
    const tracked = result.endpointId !== undefined && !UNTRACKED.has(result.status);
    const set = [
      '#status = :status',
      'updatedAt = :now',
      'statusSince = if_not_exists(statusSince, :now)',
      // A new status restarts its clock; the same status keeps it.
      ...(result.endpointId !== undefined ? ['endpointId = :eid'] : []),
      ...(result.atlasErrorMessage !== undefined ? ['atlasErrorMessage = :msg'] : []),
      ...(tracked ? ['tracked = :tracked'] : []),
    ];
    const remove = ['lease', 'lastError', 'firstFailureAt', ...(tracked ? [] : ['tracked'])];
    if (result.atlasErrorMessage === undefined) remove.push('atlasErrorMessage');
    if (claimed.status !== result.status) {
      set[2] = 'statusSince = :now';
      remove.push('stuckAt');
    }
    const out = await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { key: claimed.key },
        UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
        ConditionExpression: 'lease.#owner = :owner',
        ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
        ExpressionAttributeValues: {
          ':status': result.status,
          ':now': iso,
          ':owner': owner,
          ...(result.endpointId !== undefined && { ':eid': result.endpointId }),
          ...(result.atlasErrorMessage !== undefined && { ':msg': result.atlasErrorMessage }),
          ...(tracked && { ':tracked': TRACKED }),
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return fromRaw(out.Attributes ?? {});
  }

  /** Records a failed attempt and releases the lease so a retry (or another worker) can claim the key. */
  async recordFailure(key: string, owner: string, failure: FailureInfo): Promise<LedgerItem> {
    const iso = this.#now().toISOString();
    const lastError = {
      code: failure.code,
      detail: failure.detail,
      at: iso,
      ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
    };
    const out = await this.#db.send(
      new UpdateCommand({
        TableName: this.#table,
        Key: { key },
        UpdateExpression:
          'SET lastError = :err, updatedAt = :now, firstFailureAt = if_not_exists(firstFailureAt, :now) REMOVE lease',
        ConditionExpression: 'lease.#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':err': lastError, ':now': iso, ':owner': owner },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return fromRaw(out.Attributes ?? {});
  }

  /** One page of followed items, least recently checked first. */
  async listTracked(options: { limit: number; startKey?: Record<string, unknown> }) {
    const out = await this.#db.send(
      new QueryCommand({
        TableName: this.#table,
        IndexName: CHECK_INDEX,
        KeyConditionExpression: 'tracked = :t',
        ExpressionAttributeValues: { ':t': TRACKED },
        ScanIndexForward: true,
        Limit: options.limit,
        ...(options.startKey && { ExclusiveStartKey: options.startKey }),
      }),
    );
    return { items: (out.Items ?? []).map(fromRaw), nextKey: out.LastEvaluatedKey };
  }

  /**
   * Records a status check. Applies only while no provisioner holds the key and the status is
   * still `expectedStatus`; returns undefined when the item moved on (checked again next run).
   */
  async recordCheck(
    key: string,
    expectedStatus: LedgerStatus,
    result: { status: LedgerStatus; atlasErrorMessage?: string; stuck?: boolean },
  ): Promise<LedgerItem | undefined> {
    const now = this.#now();
    const iso = now.toISOString();
    const changed = result.status !== expectedStatus;
    const tracked = !UNTRACKED.has(result.status);
    const set = ['checkedAt = :now', 'updatedAt = :now', '#status = :status'];
    const remove: string[] = [];
    if (changed) set.push('statusSince = :now');
    if (changed) remove.push('stuckAt');
    if (result.stuck && !changed) set.push('stuckAt = if_not_exists(stuckAt, :now)');
    if (result.atlasErrorMessage !== undefined) set.push('atlasErrorMessage = :msg');
    else remove.push('atlasErrorMessage');
    if (!tracked) remove.push('tracked');
    try {
      const out = await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { key },
          UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression:
            'attribute_exists(#key) AND #status = :expected AND (attribute_not_exists(lease) OR lease.expiresAt < :nowMs)',
          ExpressionAttributeNames: { '#key': 'key', '#status': 'status' },
          ExpressionAttributeValues: {
            ':now': iso,
            ':nowMs': now.getTime(),
            ':status': result.status,
            ':expected': expectedStatus,
            ...(result.atlasErrorMessage !== undefined && { ':msg': result.atlasErrorMessage }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromRaw(out.Attributes ?? {});
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }
}
