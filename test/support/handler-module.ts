/**
 * For unit tests of a function's handler module: the functions read their configuration at
 * module load, so each test imports the module afresh under the environment it needs.
 */
import { vi } from 'vitest';

/** Stubs `env` (undone by vi.unstubAllEnvs) and imports a fresh copy of the module `load` imports. */
export async function importWithEnv<M>(env: Record<string, string>, load: () => Promise<M>): Promise<M> {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  vi.resetModules();
  return load();
}

/** Captures what the function prints (Powertools writes logs and metrics straight to the streams). */
export function captureOutput(): string[] {
  const lines: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    });
  }
  return lines;
}
