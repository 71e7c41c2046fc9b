/**
 * One request in flight and what its handlers share: the simulator's parts (spec, credentials,
 * endpoints, faults, rate limit) and its run-time settings, and how an answer goes out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Answer } from '#test/simulator/answers.ts';
import type { Credentials } from '#test/simulator/auth.ts';
import type { EndpointStore } from '#test/simulator/endpoints.ts';
import type { FaultRules, LateCreates } from '#test/simulator/faults.ts';
import type { TokenBuckets } from '#test/simulator/rate-limit.ts';
import type { AtlasSpec } from '#test/simulator/spec.ts';
import type { RecordedRequest } from '#test/simulator/types.ts';

/** A request, its body read, and the record of what was found about it. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  raw: Buffer;
  record: RecordedRequest;
}

export interface SimulatorParts {
  readonly spec: AtlasSpec;
  readonly credentials: Credentials;
  readonly store: EndpointStore;
  readonly faults: FaultRules;
  readonly lateCreates: LateCreates;
  /** Per-project token buckets; undefined when the rate limit is off. */
  readonly buckets: TokenBuckets | undefined;
  /** Projects that exist; undefined when every valid id does. */
  readonly projects: ReadonlySet<string> | undefined;
  /** The server's base URL, for the links of list answers. */
  baseUrl: string;
  /** Fixed latency added to every answer, ms. */
  latencyMs: number;
  /** List answers' totalCount from the true count; undefined for the truth. */
  totalCountEstimate: ((actual: number) => number) | undefined;
  /** Waits without keeping the process alive; rejects when the simulator closes. */
  pause(ms: number): Promise<void> | undefined;
}

/** Destroys the socket: no answer at all. */
export const drop = (exchange: Exchange): void => void exchange.res.socket?.destroy();

/** Applies the latency, then writes the answer, or destroys the socket when the answer is `lost`. */
export async function deliver(
  parts: Pick<SimulatorParts, 'latencyMs' | 'pause'>,
  { res, record }: Exchange,
  answer: Answer,
  options: { lost?: boolean; pretty?: boolean } = {},
): Promise<void> {
  await parts.pause(parts.latencyMs);
  if (options.lost) {
    res.socket?.destroy();
    return;
  }
  record.status = answer.status;
  const text =
    answer.body === undefined ? '' : JSON.stringify(answer.body, null, options.pretty ? 2 : undefined);
  res.writeHead(answer.status, {
    ...answer.headers,
    ...(text && { 'content-length': Buffer.byteLength(text) }),
  });
  res.end(text);
}
