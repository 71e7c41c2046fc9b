import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FaultRuleSchema, parseFaultRule, SIM_OPERATIONS } from '#test/simulator/fault-schema.ts';
import { loadAtlasSpec } from '#test/simulator/spec.ts';

const DEMO = JSON.parse(readFileSync(new URL('../../events/demo/simulator.json', import.meta.url), 'utf8'));

describe('the fault schema', () => {
  it('accepts every fault rule of the demo setup', () => {
    expect(DEMO.faults.length).toBeGreaterThan(0);
    for (const rule of DEMO.faults) expect(FaultRuleSchema.safeParse(rule).error).toBeUndefined();
  });

  it('names the operations the spec copy maps its operationIds to, and the OAuth endpoints', async () => {
    const spec = await loadAtlasSpec();

    expect(spec.operations.map((o) => o.operation).sort()).toEqual(
      SIM_OPERATIONS.filter((o) => o !== 'token' && o !== 'revoke').sort(),
    );
  });

  it('fails a rule naming the field and the value given', () => {
    expect(() => parseFaultRule({ fault: { kind: 'lateCreate', landAfterMs: -5 } })).toThrow(
      /fault\.landAfterMs: .* \(given -5\)/,
    );
    expect(() => parseFaultRule({ fault: { kind: 'reset' }, operations: ['update'] })).toThrow(
      /operations\.0: .*\(given "update"\)/,
    );
    expect(() => parseFaultRule({ fault: { kind: 'status', status: 200 } })).toThrow(RangeError);
  });

  it('returns a valid rule as given', () => {
    const rule = { fault: { kind: 'status', status: 503, retryAfterSeconds: 2 }, groupId: 'g', times: 2 };

    expect(parseFaultRule(rule)).toEqual(rule);
  });
});
