/** A command's main run through the CLI kit's runMain, as its script runs it, without a process. */
import { vi } from 'vitest';
import { runMain } from '#infra/ops/cli.ts';

/** The exit code runMain sets and what it printed on stderr; process.exitCode is put back. */
export async function runCommand(
  main: () => Promise<number | undefined>,
  options: { usage?: string } = {},
): Promise<{ code: number; stderr: string }> {
  const before = process.exitCode;
  let stderr = '';
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    await runMain(main, options);
    return { code: Number(process.exitCode), stderr };
  } finally {
    write.mockRestore();
    process.exitCode = before;
  }
}
