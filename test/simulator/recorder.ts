/** What the simulator found about each request it received, in arrival order, for tests to read. */
import type { RecordedRequest } from '#test/simulator/types.ts';

export class RequestLog {
  readonly #requests: RecordedRequest[] = [];

  /** A record for a request just received; the handlers fill in what they find. */
  open(method: string, url: URL): RecordedRequest {
    const record: RecordedRequest = {
      operation: 'unknown',
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      auth: 'none',
      specViolations: [],
      at: Date.now(),
    };
    this.#requests.push(record);
    return record;
  }

  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  clear(): void {
    this.#requests.splice(0);
  }
}
