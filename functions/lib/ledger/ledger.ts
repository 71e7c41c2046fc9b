/**
 * The ledger: one DynamoDB item per natural key (project, provider, region, VPC region). It is
 * how the provisioner guarantees at most one endpoint per key (a lease claimed with a
 * conditional write serialises every worker on a key, and a create is written down before it is
 * sent), what the status checker reads, and the outbox of the status events it records.
 * One Ledger serves every writer; the writes live by concern: lease.ts (the provisioner's),
 * check.ts (the status checker's), outbox.ts (adding to the outbox, and clearing it).
 *
 * Table (schema.ts): partition key `key` (string). Sparse index `byCheck`: partition
 * `tracked` ("OPEN" on items the checker visits: a followed endpoint, or events still to
 * announce), sort `checkedAt`.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { StatusChangedDetail } from '#events/schema.ts';
import { forgetAnswer, keepAnswer } from '#ledger/answers.ts';
import { confirmUnchanged, listTracked, recordCheck } from '#ledger/check.ts';
import type { AmendFields, CheckResult, LedgerItem, LedgerStatus, SettleResult } from '#ledger/item.ts';
import { amend, claim, recordFailure, release, settle } from '#ledger/lease.ts';
import { clearOutbox } from '#ledger/outbox.ts';
import { fromRaw, type TableHandle } from '#ledger/table.ts';
import type { FailureInfo } from '#lib/errors.ts';
import type { ProvisionRequest } from '#messages/request.ts';

export { ANSWER_KEY_PREFIX, isAnswerKey } from '#ledger/answers.ts';
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

  /** The key's item, read consistently. */
  async get(key: string): Promise<LedgerItem | undefined> {
    const out = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: { key }, ConsistentRead: true }),
    );
    return out.Item ? fromRaw(out.Item) : undefined;
  }

  /** Takes the key's lease, creating the item on first sight; KeyBusyError while another owner holds it. */
  claim(request: ProvisionRequest, owner: string, leaseSeconds: number): Promise<LedgerItem> {
    return claim(this.#table, request, owner, leaseSeconds);
  }

  /** Writes provisioner bookkeeping under the lease; `undefined` removes a field. */
  amend(key: string, owner: string, fields: Partial<AmendFields>): Promise<LedgerItem> {
    return amend(this.#table, key, owner, fields);
  }

  /** Releases the lease without recording anything: the request waits for Atlas. */
  release(key: string, owner: string): Promise<void> {
    return release(this.#table, key, owner);
  }

  /** Records the answer to a request with its events, and releases the lease; EventsBackloggedError when its outbox is full. */
  settle(claimed: LedgerItem, owner: string, result: SettleResult): Promise<LedgerItem> {
    return settle(this.#table, claimed, owner, result);
  }

  /** Records a failed attempt and releases the lease. */
  recordFailure(
    key: string,
    owner: string,
    failure: FailureInfo,
    options: { resolvedCreate?: boolean } = {},
  ): Promise<LedgerItem> {
    return recordFailure(this.#table, key, owner, failure, options);
  }

  /** One page of items the checker visits, least recently checked first. */
  listTracked(options: { limit: number; startKey?: Record<string, unknown> }) {
    return listTracked(this.#table, options);
  }

  /**
   * Records a status check and its events (replacing the pending statuses they supersede), unless
   * the item moved on since it was read or its outbox has no room. `pending`: the outbox as read.
   */
  recordCheck(
    key: string,
    expectedStatus: LedgerStatus,
    result: CheckResult,
    pending?: LedgerItem['outbox'],
    readUpdatedAt?: string,
  ): Promise<LedgerItem | undefined> {
    return recordCheck(this.#table, key, expectedStatus, result, pending, readUpdatedAt);
  }

  /**
   * Proves the item unchanged since it was read and held by no provisioner, marking it written;
   * the new updatedAt, or undefined when it moved on. The checker's condition for acting in Atlas.
   */
  confirmUnchanged(key: string, readUpdatedAt: string): Promise<string | undefined> {
    return confirmUnchanged(this.#table, key, readUpdatedAt);
  }

  /** Keeps an answer that has no key to wait in (EventBridge refused it) until the sweep sends it. */
  keepAnswer(event: StatusChangedDetail): Promise<void> {
    return keepAnswer(this.#table, event);
  }

  /** Deletes a kept answer once it was sent. */
  forgetAnswer(key: string): Promise<void> {
    return forgetAnswer(this.#table, key);
  }

  /** Removes events EventBridge accepted from the key's outbox. */
  clearOutbox(key: string, eventIds: readonly string[]): Promise<void> {
    return clearOutbox(this.#table, key, eventIds);
  }
}
