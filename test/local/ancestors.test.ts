import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ancestry, type ProcessInfo, processInfo, watchAncestors } from '#test/local/ancestors.ts';

/** A process table: pid -> its info. */
const table = (entries: Record<number, ProcessInfo>) => (pid: number) => entries[pid];

describe('ancestry', () => {
  it('climbs from this process while the parents are in its process group', () => {
    const me = process.pid;
    const info = table({
      [me]: { ppid: 300, pgid: 100, zombie: false },
      300: { ppid: 200, pgid: 100, zombie: false },
      200: { ppid: 50, pgid: 200, zombie: false },
    });

    expect(ancestry(info)).toEqual([
      [me, 300],
      [300, 200],
    ]);
  });
});

describe('watchAncestors', () => {
  const watch = (info: (pid: number) => ProcessInfo | undefined) => {
    const gone = vi.fn();
    const stop = watchAncestors(gone, { chain: [[30, 20]], intervalMs: 5, info });
    return { gone, stop };
  };

  it.each([
    ['ends', undefined],
    ['is a zombie', { ppid: 20, pgid: 1, zombie: true }],
    ['is reparented (its parent ended)', { ppid: 1, pgid: 1, zombie: false }],
  ])('calls back once when a watched process %s', async (_, now) => {
    const { gone, stop } = watch(() => now);

    await vi.waitFor(() => expect(gone).toHaveBeenCalledWith(30));
    await new Promise((ok) => setTimeout(ok, 30));
    expect(gone).toHaveBeenCalledTimes(1);
    stop();
  });

  it('stays quiet while every watched process runs under the parent it had', async () => {
    const { gone, stop } = watch(() => ({ ppid: 20, pgid: 1, zombie: false }));

    await new Promise((ok) => setTimeout(ok, 40));
    expect(gone).not.toHaveBeenCalled();
    stop();
  });

  it('reads this process as it is', () => {
    expect(processInfo(process.pid)).toMatchObject({ ppid: process.ppid, zombie: false });
    expect(processInfo(2 ** 22 + 1)).toBeUndefined();
  });

  it('notices, in a real process tree, that the shell which started it was killed', async () => {
    // GIVEN node under a shell (`; exit` keeps the shell from exec-ing node), in a group of their own
    const module = join(import.meta.dirname, '../../test/local/ancestors.ts');
    const script = `import { watchAncestors } from ${JSON.stringify(module)};
      watchAncestors(() => { console.log('gone'); process.exit(0); }, { intervalMs: 50 });
      console.log('watching'); setTimeout(() => process.exit(1), 20_000);`;
    const shell = spawn('sh', ['-c', `"${process.execPath}" --input-type=module -e "$0"; exit`, script], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    shell.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await vi.waitFor(() => expect(out).toContain('watching'), { timeout: 10_000 });

    // WHEN the shell alone is killed
    process.kill(shell.pid as number, 'SIGKILL');
    await once(shell, 'exit');

    // THEN node sees it and ends (its output pipe stays open until then)
    await vi.waitFor(() => expect(out).toContain('gone'), { timeout: 5_000 });
  });
});
