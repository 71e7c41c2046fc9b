/**
 * The ledger's semantics in memory, for unit tests of the domains: the same conditions (lease,
 * expected status, outbox) and the same writes as Ledger's DynamoDB expressions, which are proven
 * against moto in test/functions/lib/ledger/ledger.moto.test.ts.
 */

import type { StatusChangedDetail } from '#events/schema.ts';
import { answerItem } from '#ledger/answers.ts';
import {
  type AmendFields,
  type CheckResult,
  ENDED,
  isTracked,
  type Ledger,
  type LedgerItem,
  NEVER_CHECKED,
  nextApplied,
  nextRequesters,
  outboxHasRoom,
  requesterOf,
  type SettleResult,
  supersededBy,
  UNTRACKED,
} from '#ledger/ledger.ts';
import { TRACKED } from '#ledger/schema.ts';
import { fromRaw } from '#ledger/table.ts';
import { EventsBackloggedError, type FailureInfo, KeyBusyError } from '#lib/errors.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';

/** What the domains use of a ledger: what the stand-in implements and the ledger contract tests. */
export type LedgerApi = Pick<
  Ledger,
  | 'get'
  | 'claim'
  | 'amend'
  | 'release'
  | 'settle'
  | 'recordFailure'
  | 'listTracked'
  | 'recordCheck'
  | 'confirmUnchanged'
  | 'clearOutbox'
  | 'keepAnswer'
  | 'forgetAnswer'
>;

export class ConditionFailed extends Error {
  constructor(what: string) {
    super(`The conditional request failed: ${what}`);
    this.name = 'ConditionalCheckFailedException';
  }
}

const copy = <T>(value: T): T => structuredClone(value);

export class InMemoryLedger implements LedgerApi {
  readonly items = new Map<string, LedgerItem>();
  /** Keys whose claim fails as if another worker held the lease. */
  readonly busy = new Set<string>();
  /** Writes made, by method. */
  readonly writes: string[] = [];
  readonly #now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  async get(key: string) {
    const item = this.items.get(key);
    return item ? copy(item) : undefined;
  }

  async claim(request: ProvisionRequest, owner: string, leaseSeconds: number) {
    this.writes.push('claim');
    const key = naturalKey(request);
    const now = this.#now();
    const stored = this.items.get(key);
    const lease = stored?.lease;
    if (this.busy.has(key) || (lease && lease.expiresAt >= now.getTime() && lease.owner !== owner)) {
      throw new KeyBusyError(
        key,
        lease ? Math.max(1, Math.ceil((lease.expiresAt - now.getTime()) / 1000)) : undefined,
      );
    }
    const iso = now.toISOString();
    const item: LedgerItem = {
      createdAt: iso,
      status: 'REQUESTED',
      statusSince: iso,
      checkedAt: NEVER_CHECKED,
      action: request.action,
      requesters: {},
      ...stored,
      key,
      groupId: request.groupId,
      cloudProvider: request.cloudProvider,
      regionName: request.regionName,
      ...(request.vpcRegionName && { vpcRegionName: request.vpcRegionName }),
      profile: stored?.profile ?? request.profile,
      updatedAt: iso,
      lease: { owner, expiresAt: now.getTime() + leaseSeconds * 1000 },
    };
    this.items.set(key, item);
    return copy(item);
  }

  #held(key: string, owner: string): LedgerItem {
    const item = this.items.get(key);
    if (item?.lease?.owner !== owner) throw new ConditionFailed(`lease of ${key} is not ${owner}'s`);
    return item;
  }

  async amend(key: string, owner: string, fields: Partial<AmendFields>) {
    this.writes.push('amend');
    const item = this.#held(key, owner);
    Object.assign(item, fields, { updatedAt: this.#now().toISOString() });
    for (const [name, value] of Object.entries(fields))
      if (value === undefined) delete item[name as keyof LedgerItem];
    if (fields.pendingCreate) item.tracked = TRACKED;
    return copy(item);
  }

  async release(key: string, owner: string) {
    this.writes.push('release');
    const item = this.#held(key, owner);
    delete item.lease;
    item.updatedAt = this.#now().toISOString();
  }

  async settle(claimed: LedgerItem, owner: string, result: SettleResult) {
    this.writes.push('settle');
    const item = this.#held(claimed.key, owner);
    const events = result.events ?? [];
    // The bound on the stored outbox (a drain since the claim may have made room); nothing is written.
    const size = Object.keys(item.outbox ?? {}).length;
    if (events.length > 0 && !outboxHasRoom(size, events.length, { count: 0, allPresent: true }))
      throw new EventsBackloggedError(claimed.key);
    const tracked =
      isTracked({ status: result.status, endpointId: result.endpointId, outbox: claimed.outbox }) ||
      events.length > 0;
    if (claimed.status !== result.status) delete item.stuckAt;
    for (const name of [
      'lease',
      'lastError',
      'firstFailureAt',
      'pendingCreate',
      'atlasErrorMessage',
    ] as const)
      delete item[name];
    const holds = ENDED.has(result.status) ? [] : result.holds && [...new Set(result.holds)];
    if (holds?.length === 0) delete item.holds;
    else if (holds) item.holds = holds;
    if (result.endpointId === undefined && UNTRACKED.has(result.status)) delete item.endpointId;
    const applied = nextApplied(claimed, result.request);
    if (applied !== undefined) item.applied = applied;
    if (result.lifecycle !== undefined) item.lifecycle = { ...result.lifecycle };
    Object.assign(item, {
      status: result.status,
      action: result.request.action,
      requesters: nextRequesters(claimed, result.request),
      lastRequester: requesterOf(result.request),
      updatedAt: this.#now().toISOString(),
      statusSince: result.statusSince,
      ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
      ...(result.endpointId !== undefined &&
        !UNTRACKED.has(result.status) && { profile: result.request.profile }),
      ...(result.atlasErrorMessage !== undefined && { atlasErrorMessage: result.atlasErrorMessage }),
    });
    for (const [name, value] of Object.entries(result.fields ?? {})) {
      if (value === undefined) delete item[name as keyof LedgerItem];
      else Object.assign(item, { [name]: value });
    }
    if (tracked) item.tracked = TRACKED;
    else delete item.tracked;
    if (events.length > 0)
      item.outbox = { ...item.outbox, ...Object.fromEntries(events.map((e) => [e.eventId, e])) };
    return copy(item);
  }

  async recordFailure(
    key: string,
    owner: string,
    failure: FailureInfo,
    options: { resolvedCreate?: boolean } = {},
  ) {
    this.writes.push('recordFailure');
    const item = this.#held(key, owner);
    const iso = this.#now().toISOString();
    delete item.lease;
    if (options.resolvedCreate) delete item.pendingCreate;
    item.lastError = {
      code: failure.code,
      detail: failure.detail,
      at: iso,
      ...(failure.httpStatus !== undefined && { httpStatus: failure.httpStatus }),
    };
    item.updatedAt = iso;
    item.firstFailureAt ??= iso;
    return copy(item);
  }

  /** Pages the check index as DynamoDB does: by (checkedAt, key), resuming after the start key. */
  async listTracked(options: { limit: number; startKey?: Record<string, unknown> }) {
    const order = (i: { checkedAt?: unknown; key?: unknown }) => `${i.checkedAt}|${i.key}`;
    const start = options.startKey;
    const tracked = [...this.items.values()]
      .filter((i) => i.tracked === TRACKED && (!start || order(i) > order(start)))
      .sort((a, b) => order(a).localeCompare(order(b)));
    const page = tracked.slice(0, options.limit);
    const last = page.at(-1);
    return {
      items: page.map(copy),
      nextKey:
        tracked.length > page.length && last
          ? { key: last.key, tracked: last.tracked, checkedAt: last.checkedAt }
          : undefined,
    };
  }

  async recordCheck(
    key: string,
    expectedStatus: LedgerItem['status'],
    result: CheckResult,
    pending?: LedgerItem['outbox'],
    readUpdatedAt?: string,
  ) {
    this.writes.push('recordCheck');
    const now = this.#now();
    const item = this.items.get(key);
    const events = result.events ?? [];
    const outboxExists = Object.keys(pending ?? {}).length > 0;
    const replaced = outboxExists ? supersededBy(pending, events) : [];
    if (!item || item.status !== expectedStatus) return undefined;
    if (readUpdatedAt !== undefined && item.updatedAt !== readUpdatedAt) return undefined;
    if (item.lease && item.lease.expiresAt >= now.getTime()) return undefined;
    const stored = Object.keys(item.outbox ?? {});
    if (events.length > 0 && !outboxExists && stored.length > 0) return undefined;
    const room = outboxHasRoom(stored.length, events.length, {
      count: replaced.length,
      allPresent: replaced.every((id) => stored.includes(id)),
    });
    if (events.length > 0 && !room) return undefined;
    const iso = now.toISOString();
    const changed = result.status !== expectedStatus;
    Object.assign(item, { checkedAt: iso, updatedAt: iso, status: result.status });
    if (changed) {
      item.statusSince = result.statusSince ?? iso;
      delete item.stuckAt;
    }
    if (result.stuck && !changed) item.stuckAt ??= iso;
    if (result.atlasErrorMessage !== undefined) item.atlasErrorMessage = result.atlasErrorMessage;
    else delete item.atlasErrorMessage;
    if (result.status === 'DELETED' || result.status === 'MISSING') {
      delete item.endpointId;
      delete item.holds;
    }
    for (const [name, value] of Object.entries(result.fields ?? {})) {
      if (value === undefined || (Array.isArray(value) && value.length === 0))
        delete item[name as keyof LedgerItem];
      else Object.assign(item, { [name]: value });
    }
    if (!UNTRACKED.has(result.status) || events.length > 0 || outboxExists) item.tracked = TRACKED;
    else delete item.tracked;
    if (events.length > 0) {
      const kept = Object.entries(item.outbox ?? {}).filter(([id]) => !replaced.includes(id));
      item.outbox = { ...Object.fromEntries(kept), ...Object.fromEntries(events.map((e) => [e.eventId, e])) };
    }
    return copy(item);
  }

  async confirmUnchanged(key: string, readUpdatedAt: string) {
    this.writes.push('confirmUnchanged');
    const now = this.#now();
    const item = this.items.get(key);
    if (!item || item.updatedAt !== readUpdatedAt) return undefined;
    if (item.lease && item.lease.expiresAt >= now.getTime()) return undefined;
    item.updatedAt = now.toISOString();
    return item.updatedAt;
  }

  async clearOutbox(key: string, eventIds: readonly string[]) {
    if (eventIds.length === 0) return;
    this.writes.push('clearOutbox');
    const item = this.items.get(key);
    if (!item?.outbox) return;
    for (const id of eventIds) delete item.outbox[id];
    if (Object.keys(item.outbox).length === 0) {
      delete item.outbox;
      if (!isTracked(item)) delete item.tracked;
    }
  }

  async keepAnswer(event: StatusChangedDetail) {
    this.writes.push('keepAnswer');
    const item = answerItem(event, this.#now()) as unknown as LedgerItem;
    if (!this.items.has(item.key)) this.items.set(item.key, copy(item));
  }

  async forgetAnswer(key: string) {
    this.writes.push('forgetAnswer');
    const item = this.items.get(key);
    if (item && Object.keys(item.outbox ?? {}).length === 0) this.items.delete(key);
  }

  /** Puts an item as it would be stored (tests that start from a given state). */
  store(item: LedgerItem): void {
    this.items.set(item.key, copy(item));
  }

  /** Puts an item as the table holds it, read as the Ledger reads it (an item of an earlier version). */
  storeRaw(raw: Record<string, unknown>): void {
    this.store(fromRaw(raw));
  }
}
