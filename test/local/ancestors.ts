/**
 * `npm start` runs as npm -> sh -> the launcher -> tsx -> node: a signal sent to any of them (a CI
 * job or a service manager stops the process it started) must stop the run, but npm and sh pass
 * none on. So the run watches its ancestors in its own process group: when one ends, or is
 * reparented because its parent ended, the run stops as on Ctrl-C. Linux reads /proc; elsewhere
 * `ps` answers.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcessInfo {
  ppid: number;
  pgid: number;
  /** Ended, not yet reaped by its parent. */
  zombie: boolean;
}

/** A process's parent, group and whether it has ended; undefined when there is no such process. */
export function processInfo(pid: number): ProcessInfo | undefined {
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(ppid), pgid: Number(pgid), zombie: state === 'Z' || state === 'X' };
    } catch {
      return undefined;
    }
  }
  try {
    const out = execFileSync('ps', ['-o', 'stat=,ppid=,pgid=', '-p', String(pid)], { encoding: 'utf8' });
    const [state = '', ppid, pgid] = out.trim().split(/\s+/);
    return out.trim() ? { ppid: Number(ppid), pgid: Number(pgid), zombie: state.startsWith('Z') } : undefined;
  } catch {
    return undefined;
  }
}

/** This process and its ancestors in its process group, each with the parent it has now. */
export function ancestry(
  info: (pid: number) => ProcessInfo | undefined = processInfo,
): Array<[number, number]> {
  const group = info(process.pid)?.pgid;
  const chain: Array<[number, number]> = [];
  for (let pid = process.pid; pid > 1; ) {
    const current = info(pid);
    if (!current || current.pgid !== group) break;
    chain.push([pid, current.ppid]);
    pid = current.ppid;
  }
  return chain;
}

/**
 * Calls `onGone` once, when a process of `chain` has ended or has another parent than it had;
 * checks every `intervalMs`. Returns the function that stops watching.
 */
export function watchAncestors(
  onGone: (pid: number) => void,
  options: { chain?: Array<[number, number]>; intervalMs?: number; info?: typeof processInfo } = {},
): () => void {
  const info = options.info ?? processInfo;
  const chain = options.chain ?? ancestry(info);
  const timer = setInterval(() => {
    const gone = chain.find(([pid, ppid]) => {
      const now = info(pid);
      return !now || now.zombie || now.ppid !== ppid;
    });
    if (gone === undefined) return;
    clearInterval(timer);
    onGone(gone[0]);
  }, options.intervalMs ?? 500);
  // Never what keeps the run alive.
  timer.unref();
  return () => clearInterval(timer);
}
