/** The shared soak's plan and the end it expects of each key, from the order requests were sent. */
import { describe, expect, it } from 'vitest';
import { expectedEnds, planShared } from './shared.ts';

const request = (requester: string, key: number, action: 'create' | 'delete') => ({
  requester,
  key,
  action,
  body: '{}',
  delaySeconds: 0,
});

describe('the shared soak', () => {
  it('expects an endpoint where the last request sent was a create, none where every requester last asked to delete', () => {
    const ends = expectedEnds([
      request('a', 1, 'create'),
      request('b', 1, 'delete'),
      request('a', 1, 'create'),
      request('a', 2, 'create'),
      request('b', 2, 'create'),
      request('a', 2, 'delete'),
      request('b', 2, 'delete'),
      request('a', 3, 'create'),
      request('b', 3, 'create'),
      request('b', 3, 'delete'),
    ]);

    expect(ends).toEqual(
      new Map([
        [1, 'endpoint'],
        [2, 'none'],
        // b's delete was last, but a's last was a create: whether a held the key first decides.
        [3, 'either'],
      ]),
    );
  });

  it('plans every key a sequence starting with a create, keeps each key in order, and is the same for a seed', () => {
    const options = { keys: 30, requesters: 3, seed: 7, timeoutMinutes: 1, shuffleSeconds: 4 };
    const plan = planShared(options);

    expect(planShared(options)).toEqual(plan);
    const firsts = new Map<number, string>();
    for (const p of plan) if (!firsts.has(p.key)) firsts.set(p.key, p.action);
    expect(firsts.size).toBe(30);
    expect(new Set(firsts.values())).toEqual(new Set(['create']));
    expect(new Set(plan.map((p) => p.requester))).toEqual(new Set(['team-0', 'team-1', 'team-2']));
    expect(plan.every((p) => p.delaySeconds >= 0 && p.delaySeconds <= 4)).toBe(true);
    expect(new Set(plan.map((p) => JSON.parse(p.body).requestId)).size).toBe(plan.length);
  });
});
