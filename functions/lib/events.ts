/** Publishes the status events requesters subscribe to (EventBridge, one detail-type). */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { STATUS_CHANGED_DETAIL_TYPE, type StatusChangedDetail } from '#lib/status-event.ts';

export interface StatusEventsOptions {
  busName: string;
  source: string;
  client?: EventBridgeClient;
}

const MAX_ENTRIES_PER_CALL = 10;

export class StatusEvents {
  readonly #bus: string;
  readonly #source: string;
  readonly #client: EventBridgeClient;

  constructor(options: StatusEventsOptions) {
    this.#bus = options.busName;
    this.#source = options.source;
    this.#client = options.client ?? new EventBridgeClient({});
  }

  /** Publishes the events, ten per call; throws if any entry was not accepted, so the caller retries. */
  async publish(...details: StatusChangedDetail[]): Promise<void> {
    for (let i = 0; i < details.length; i += MAX_ENTRIES_PER_CALL) {
      const chunk = details.slice(i, i + MAX_ENTRIES_PER_CALL);
      const out = await this.#client.send(
        new PutEventsCommand({
          Entries: chunk.map((detail) => ({
            EventBusName: this.#bus,
            Source: this.#source,
            DetailType: STATUS_CHANGED_DETAIL_TYPE,
            Detail: JSON.stringify(detail),
            Resources: [],
          })),
        }),
      );
      if ((out.FailedEntryCount ?? 0) > 0) {
        const first = out.Entries?.find((e) => e.ErrorCode);
        throw new Error(
          `EventBridge refused ${out.FailedEntryCount} status event(s): ${first?.ErrorCode} ${first?.ErrorMessage}`,
        );
      }
    }
  }
}
