/**
 * In-process concurrency for the records of one batch. Powertools' BatchProcessor runs every
 * record at once (Promise.all, no bound), so the provisioner bounds it here, and runs records
 * for the same natural key one after another (the ledger lease serialises across containers).
 */

/** Runs tasks one after another per key; tasks for different keys run independently. */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

/** Runs at most `limit` tasks at once; the others wait in arrival order. */
export class Limiter {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.#limit) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // A finishing task hands its slot straight to the next waiter.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
