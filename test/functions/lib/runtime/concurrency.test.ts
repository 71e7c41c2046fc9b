import { describe, expect, it } from 'vitest';
import { KeyedLock, Limiter } from '#runtime/concurrency.ts';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KeyedLock', () => {
  it('runs tasks of one key in arrival order, and a failed task does not block the next', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const task =
      (name: string, fail = false) =>
      async () => {
        order.push(`start ${name}`);
        await tick();
        order.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };

    const results = await Promise.allSettled([lock.run('k', task('a', true)), lock.run('k', task('b'))]);

    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
  });

  it('keeps a task that arrives after the first one ended waiting for the one still running', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    let releaseB = () => {};
    const gateB = new Promise<void>((resolve) => {
      releaseB = resolve;
    });
    const a = lock.run('k', async () => order.push('a'));
    const b = lock.run('k', async () => {
      order.push('start b');
      await gateB;
      order.push('end b');
    });
    await a;
    await new Promise(setImmediate); // a's bookkeeping settles; b is still running

    const c = lock.run('k', async () => order.push('c'));
    await new Promise(setImmediate);
    const whileBRuns = [...order];
    releaseB();
    await Promise.all([b, c]);

    expect(whileBRuns).toEqual(['a', 'start b']);
    expect(order).toEqual(['a', 'start b', 'end b', 'c']);
  });

  it('runs tasks of different keys at the same time', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const task = (name: string) => async () => {
      order.push(`start ${name}`);
      await tick();
      order.push(`end ${name}`);
    };

    await Promise.all([lock.run('k1', task('a')), lock.run('k2', task('b'))]);

    expect(order).toEqual(['start a', 'start b', 'end a', 'end b']);
  });
});

describe('Limiter', () => {
  it('runs at most its limit at once and every task eventually, failures included', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let most = 0;
    const task = (fail: boolean) => async () => {
      active += 1;
      most = Math.max(most, active);
      await tick();
      active -= 1;
      if (fail) throw new Error('boom');
    };

    const results = await Promise.allSettled(
      Array.from({ length: 7 }, (_, i) => limiter.run(task(i % 3 === 0))),
    );

    expect(most).toBe(2);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(3);
  });

  it('refuses a limit below one or not whole, naming it', () => {
    expect(() => new Limiter(0)).toThrow(new RangeError('limit must be a positive integer, got 0'));
    expect(() => new Limiter(1.5)).toThrow(RangeError);
  });
});
