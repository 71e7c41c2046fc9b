/**
 * The simulator's random: mulberry32, a small 32-bit PRNG, so a seeded run draws the same
 * numbers in the same order (fault probabilities, endpoint failures). Not for anything secret:
 * endpoint ids and tokens keep using node:crypto.
 */

/** A function returning numbers in [0, 1): seeded (reproducible) when `seed` is given, Math.random otherwise. */
export function seededRandom(seed?: number): () => number {
  if (seed === undefined) return Math.random;
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Throws unless `p` is a probability (a number from 0 to 1). */
export function checkProbability(p: number, what: string): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new RangeError(`${what} must be a number from 0 to 1, got ${p}`);
  }
}
