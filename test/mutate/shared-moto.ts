/**
 * What `#test/local/emulators.ts` resolves to under vitest.mutate-ledger.config.ts: the emulators
 * as they are, except that startMoto hands over the moto of moto-once.ts (the globalSetup),
 * emptied of what an earlier run left, and its stop leaves it running for the next run.
 */
import { inject } from 'vitest';
import type { Moto } from '../local/emulators.ts';

export * from '../local/emulators.ts';

export async function startMoto(): Promise<Moto> {
  const endpoint = inject('motoEndpoint');
  const reset = async () => {
    const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
  };
  await reset();
  return { endpoint, reset, stop: async () => {} };
}
