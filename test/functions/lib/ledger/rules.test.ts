/** The rules both writers of the ledger apply alike (functions/lib/ledger/rules.ts). */
import { describe, expect, it } from 'vitest';
import { freshUnconfirmedCreates, UNCONFIRMED_CREATE_TTL_MS } from '#ledger/ledger.ts';

const NOW = new Date('2026-11-29T10:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

describe('freshUnconfirmedCreates', () => {
  it('keeps creates in doubt sent within a day, one sent exactly a day ago included, in their order', () => {
    const kept = [ago(UNCONFIRMED_CREATE_TTL_MS), ago(60_000), ago(0)];
    expect(freshUnconfirmedCreates({ unconfirmedCreates: kept }, NOW)).toEqual(kept);
  });

  it('forgets one sent more than a day ago, and a send time it cannot read', () => {
    const item = { unconfirmedCreates: [ago(UNCONFIRMED_CREATE_TTL_MS + 1), 'not a time', ago(5)] };
    expect(freshUnconfirmedCreates(item, NOW)).toEqual([ago(5)]);
  });

  it('has none for a key that remembers none', () => {
    expect(freshUnconfirmedCreates({}, NOW)).toEqual([]);
  });
});
