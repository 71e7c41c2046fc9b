/** Atlas's per-project token bucket: each request takes one token; tokens refill continuously. */

export interface BucketAnswer {
  allowed: boolean;
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until one token is back (only meaningful when not allowed). */
  retryAfterSeconds: number;
}

export class TokenBuckets {
  readonly #capacity: number;
  readonly #refillPerMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(capacity: number, refillPerMinute: number, now: () => number = () => Date.now()) {
    this.#capacity = capacity;
    this.#refillPerMs = refillPerMinute / 60_000;
    this.#now = now;
  }

  take(key: string): BucketAnswer {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#capacity, at: now };
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#refillPerMs);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    const missing = 1 - bucket.tokens;
    return {
      allowed,
      limit: this.#capacity,
      remaining: Math.floor(bucket.tokens),
      retryAfterSeconds: allowed
        ? 0
        : this.#refillPerMs > 0
          ? Math.max(1, Math.ceil(missing / this.#refillPerMs / 1000))
          : 60,
    };
  }

  reset(): void {
    this.#buckets.clear();
  }
}
