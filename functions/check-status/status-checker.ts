/**
 * The status checker's domain: follows every tracked endpoint in Atlas with one paginated list
 * per project and provider, records what it finds in the ledger together with the events that
 * announce it (the item's outbox), then publishes them: changes, stuck endpoints, drift, extra
 * endpoints for one key, and FAILED endpoints, whose keys go back to the provisioner to be
 * created anew. Atlas failures leave the project's items untouched: they stay the least recently
 * checked, so the next run takes them first and nothing is starved; what their outboxes hold is
 * sent all the same. A project Atlas says does not exist has its keys retired once a later run
 * confirms it (gone.ts).
 *
 * This entry pages the ledger and takes each project and item in turn; the work is done by
 * listing.ts (Atlas's listing), compare.ts, extras.ts and gone.ts (the decision), hand-back.ts and
 * record.ts, which share the types of run.ts.
 */
import { randomUUID } from 'node:crypto';
import { announceRecorded } from '#events/outbox.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import { isAnswerKey, type LedgerItem } from '#ledger/ledger.ts';
import { Limiter } from '#runtime/concurrency.ts';
import { decide } from './compare.ts';
import { goneDecision } from './gone.ts';
import { followClosely, handBack } from './hand-back.ts';
import { groupByProject, listingFor } from './listing.ts';
import { emitMetrics, record } from './record.ts';
import {
  type CheckerDeps,
  type CheckSummary,
  type Listing,
  outOfTime,
  type ProjectGone,
  type Run,
  type StatusCheckerOptions,
} from './run.ts';

export { deadlineOf } from './compare.ts';
export type { CheckSummary, Deadlines, ListingApi, StatusCheckerOptions } from './run.ts';

const DEFAULT_PAGE_SIZE = 1_000;
const DEFAULT_WRITE_CONCURRENCY = 16;

export class StatusChecker {
  readonly #o: CheckerDeps;
  readonly #writes: Limiter;

  constructor(options: StatusCheckerOptions) {
    this.#o = { ...options, now: options.now ?? (() => new Date()) };
    this.#writes = new Limiter(options.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY);
  }

  /**
   * Checks tracked items, least recently checked first, until all are done or less than the
   * safety margin of `remainingMs()` is left. Throws only when the ledger cannot be read.
   */
  async run(options: { remainingMs: () => number }): Promise<CheckSummary> {
    const run: Run = {
      startedAt: this.#o.now().toISOString(),
      remainingMs: options.remainingMs,
      marginMs: Math.min(this.#o.safetyMarginMs, options.remainingMs() / 2),
      listings: new Map(),
      seen: new Set(),
      summary: {
        checked: 0,
        changed: 0,
        stuck: 0,
        missing: 0,
        skipped: 0,
        projects: 0,
        duplicatesDeleted: 0,
        stoppedEarly: false,
      },
    };
    const projects = new Limiter(this.#o.projectConcurrency);
    let startKey: Record<string, unknown> | undefined;
    do {
      if (outOfTime(run)) break;
      const page = await this.#o.ledger.listTracked({
        limit: this.#o.pageSize ?? DEFAULT_PAGE_SIZE,
        ...(startKey && { startKey }),
      });
      // Items recorded by this run come round again at the end of the index: the run is done there.
      const due = page.items.filter((item) => item.checkedAt < run.startedAt && !run.seen.has(item.key));
      for (const item of due) run.seen.add(item.key);
      const keyed = due.filter((item) => !isAnswerKey(item.key));
      await Promise.all([
        this.#sendKeptAnswers(due.filter((item) => isAnswerKey(item.key))),
        ...[...groupByProject(keyed).values()].map((items) =>
          projects.run(() => this.#checkProject(items, run)),
        ),
      ]);
      const wrapped = page.items.some((item) => item.checkedAt >= run.startedAt);
      startKey = wrapped ? undefined : page.nextKey;
    } while (startKey && !run.summary.stoppedEarly);

    emitMetrics(this.#o, run.summary);
    this.#o.logger.info('status check done', { ...run.summary });
    return run.summary;
  }

  /**
   * Checks a project's items against its listing, then sends what their outboxes hold. The
   * outboxes are sent whatever the listing's outcome: an answer recorded for a requester never
   * waits on Atlas. A project not started for lack of time is not visited: the next run takes it.
   */
  async #checkProject(items: LedgerItem[], run: Run): Promise<void> {
    const [first] = items;
    if (!first) return;
    const listing = await listingFor(this.#o, first, run);
    if (!listing) {
      run.summary.skipped += items.length;
      return;
    }
    const toSend = listing.ok
      ? await this.#checkListed(items, listing, run)
      : await this.#checkUnlisted(items, listing.gone, run);
    const { events, ledger, metrics, logger } = this.#o;
    // Recorded one by one, announced together: ten events a PutEvents call, not one.
    await announceRecorded({ events, ledger, metrics, logger, write: (fn) => this.#writes.run(fn) }, toSend);
  }

  /**
   * Answers kept with no key (a parked request's, refused by EventBridge): sent whatever Atlas
   * does, and each item deleted once its answer was taken.
   */
  async #sendKeptAnswers(items: LedgerItem[]): Promise<void> {
    if (items.length === 0) return;
    const { events, ledger, metrics, logger } = this.#o;
    const write = <T>(fn: () => Promise<T>) => this.#writes.run(fn);
    await announceRecorded({ events, ledger, metrics, logger, write }, items.flatMap(pendingOf));
    await Promise.all(
      items.map((item) =>
        write(() =>
          ledger.forgetAnswer(item.key).catch((error: unknown) => {
            logger.warn('could not delete a kept answer that was sent; the next run does', {
              error,
              key: item.key,
            });
          }),
        ),
      ),
    );
  }

  async #checkListed(items: LedgerItem[], listing: Extract<Listing, { ok: true }>, run: Run) {
    // A listing is shared by later ledger pages: an item a provisioner wrote since it was taken
    // (a new endpoint, a delete) would be judged on an older Atlas; it is checked next run.
    const current = items.filter((item) => item.updatedAt <= listing.listedAt);
    const newer = items.filter((item) => item.updatedAt > listing.listedAt);
    run.summary.skipped += newer.length;
    const recorded = await Promise.all(
      current.map((item) => this.#writes.run(() => this.#checkItem(item, listing, run))),
    );
    return [...recorded.flat(), ...newer.flatMap(pendingOf)];
  }

  /**
   * A project Atlas did not list: its items are left as they are for the next run, except that
   * Atlas saying the project is gone is remembered, and confirmed later, retires its keys.
   */
  async #checkUnlisted(items: LedgerItem[], gone: ProjectGone | undefined, run: Run) {
    const sent = await Promise.all(
      items.map(async (item) => {
        const decision = gone && goneDecision(this.#o, item, gone);
        if (!decision) {
          run.summary.skipped += 1;
          return pendingOf(item);
        }
        const recorded = await this.#writes.run(() => record(this.#o, decision, run.summary));
        return recorded ? pendingOf(recorded) : pendingOf(item);
      }),
    );
    return sent.flat();
  }

  /**
   * Decides an item and records the decision with its events in the item's outbox; returns the
   * events to publish: what the outbox holds (from an earlier run, and the new ones).
   */
  async #checkItem(
    item: LedgerItem,
    listing: Extract<Listing, { ok: true }>,
    run: Run,
  ): Promise<Array<{ key: string; event: StatusChangedDetail }>> {
    const pending = pendingOf(item);
    const decided = await decide(this.#o, item, listing, this.#o.now(), run.summary);
    // Atlas listed the project: it exists, whatever an earlier listing said.
    const decision =
      item.projectGoneSince === undefined
        ? decided
        : {
            ...decided,
            result: { ...decided.result, fields: { ...decided.result.fields, projectGoneSince: undefined } },
          };
    if (decision.result.handBack && !(await handBack(this.#o, item))) {
      run.summary.skipped += 1;
      return pending;
    }
    // Follow-ups started here are the key's one live chain: recorded with the check, so any other stops.
    const chain =
      decision.follow !== undefined && this.#o.requests && this.#o.followUpFirstSeconds !== undefined
        ? randomUUID()
        : undefined;
    const recorded = await record(
      this.#o,
      chain
        ? {
            ...decision,
            result: { ...decision.result, fields: { ...decision.result.fields, followChain: chain } },
          }
        : decision,
      run.summary,
    );
    if (recorded && decision.follow !== undefined) await followClosely(this.#o, item, decision.follow, chain);
    // What the outbox holds now: the new events, and what they did not supersede.
    return recorded ? pendingOf(recorded) : pending;
  }
}

/** The events an item's outbox holds, to publish. */
const pendingOf = (item: LedgerItem): Array<{ key: string; event: StatusChangedDetail }> =>
  Object.values(item.outbox ?? {}).map((event) => ({ key: item.key, event }));
