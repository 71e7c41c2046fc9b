/** Publishes the status events requesters subscribe to (EventBridge, one detail-type). */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { STATUS_CHANGED_DETAIL_TYPE, type StatusChangedDetail } from '#events/status-event.ts';

export interface StatusEventsOptions {
  busName: string;
  source: string;
  client?: EventBridgeClient;
}

/** PutEvents takes at most 10 entries and 256 KB (all entries together) per call. */
export const MAX_ENTRIES_PER_CALL = 10;
export const MAX_BYTES_PER_CALL = 256 * 1024;

/** Some events were not accepted; `accepted` holds the eventIds that were. */
export class EventPublishError extends Error {
  constructor(
    message: string,
    readonly accepted: readonly string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'EventPublishError';
  }
}

/** An entry's size as EventBridge counts it: Source, DetailType, Detail and Resources in UTF-8 bytes. */
export function entrySize(entry: PutEventsRequestEntry): number {
  const bytes = (s: string | undefined) => (s === undefined ? 0 : Buffer.byteLength(s, 'utf8'));
  return (
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((n, r) => n + bytes(r), 0) +
    (entry.Time ? 14 : 0)
  );
}

/** Entries in calls that each respect PutEvents' entry count and size limits. */
export function chunkEntries<T extends PutEventsRequestEntry>(entries: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const entry of entries) {
    const n = entrySize(entry);
    if (current.length > 0 && (current.length === MAX_ENTRIES_PER_CALL || size + n > MAX_BYTES_PER_CALL)) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += n;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export class StatusEvents {
  readonly #bus: string;
  readonly #source: string;
  readonly #client: EventBridgeClient;

  constructor(options: StatusEventsOptions) {
    this.#bus = options.busName;
    this.#source = options.source;
    this.#client = options.client ?? new EventBridgeClient({});
  }

  /**
   * Publishes the events in as few calls as the limits allow. Throws EventPublishError, naming
   * the events that were accepted, when any was not: the caller keeps the rest in its outbox. A
   * call EventBridge refuses does not hold back the calls after it.
   */
  async publish(...details: StatusChangedDetail[]): Promise<void> {
    const accepted: string[] = [];
    const entries = details.map((detail) => ({
      eventId: detail.eventId,
      EventBusName: this.#bus,
      Source: this.#source,
      DetailType: STATUS_CHANGED_DETAIL_TYPE,
      Detail: JSON.stringify(detail),
      Resources: [],
    }));
    const problems: string[] = [];
    let failure: unknown;
    for (const chunk of chunkEntries(entries)) {
      try {
        const out = await this.#client.send(
          new PutEventsCommand({ Entries: chunk.map(({ eventId: _, ...entry }) => entry) }),
        );
        chunk.forEach((entry, i) => {
          const result = out.Entries?.[i];
          if (result?.ErrorCode) problems.push(`${result.ErrorCode} ${result.ErrorMessage ?? ''}`.trim());
          else if ((out.FailedEntryCount ?? 0) === 0 || result?.EventId) accepted.push(entry.eventId);
          else problems.push('not accepted');
        });
      } catch (error) {
        failure ??= error;
        for (const _ of chunk) problems.push((error as Error).message);
      }
    }
    if (problems.length > 0) {
      throw new EventPublishError(
        `EventBridge refused ${problems.length} status event(s): ${problems[0]}`,
        accepted,
        ...(failure === undefined ? [] : [{ cause: failure }]),
      );
    }
  }
}
