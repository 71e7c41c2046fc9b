/**
 * The simulator's operations and the faults it can inject, defined once: the TypeScript types
 * are inferred from these schemas, and the same schemas validate `injectFault` and the faults of
 * `events/demo/simulator.json`. Imports zod only, so any harness can load it.
 */
import { z } from 'zod';

/** The Admin API operations the simulator serves, by the names the spec copy maps its operationIds to. */
export const API_OPERATIONS = ['list', 'create', 'get', 'delete'] as const;
/** Every operation a fault rule can name: the Admin API's and the OAuth endpoints'. */
export const SIM_OPERATIONS = [...API_OPERATIONS, 'token', 'revoke'] as const;

export const SimOperationSchema = z.enum(SIM_OPERATIONS);
export type ApiOperation = (typeof API_OPERATIONS)[number];
export type SimOperation = z.infer<typeof SimOperationSchema>;

const whole = z.number().int().min(0);
export const ProbabilitySchema = z.number().min(0).max(1);

export const FaultSchema = z.discriminatedUnion('kind', [
  /** Answer with this status (ApiError body; 429/503 with Retry-After when retryAfterSeconds is set). */
  z.object({
    kind: z.literal('status'),
    status: z.number().int().min(400).max(599),
    errorCode: z.string().optional(),
    retryAfterSeconds: whole.optional(),
  }),
  /** Wait this long before handling the request (past the client's timeout to simulate a hang). */
  z.object({ kind: z.literal('delay'), ms: whole }),
  /** Destroy the socket without answering. */
  z.object({ kind: z.literal('reset') }),
  /** Perform the operation (e.g. create the endpoint), then destroy the socket instead of answering. */
  z.object({ kind: z.literal('lostResponse') }),
  /**
   * create only: the server accepts the create but finishes it late: the endpoint appears `landAfterMs`
   * after the request arrived (with no conflict check at landing: the race a slow server has), and the
   * client gets no answer (the socket is destroyed when it lands, or earlier when the client gives up).
   * The request is validated and conflict-checked on arrival as usual; a create that would not be
   * answered 201 is answered as usual (the rule still counts it as a hit). reset() and close() cancel
   * pending landings.
   */
  z.object({ kind: z.literal('lateCreate'), landAfterMs: whole }),
  /**
   * create only: the server answers 201 but creates two endpoints for the one request (both for the same
   * regions; the answer names the first). A create that conflicts is answered 409 as usual (and counts as a hit).
   */
  z.object({ kind: z.literal('doubleCreate') }),
  /**
   * create only: the create is answered as usual, and Atlas later recreates the endpoint under a new id
   * (as it does when the cloud side rejected or removed it): `activeMs` after turning ACTIVE it shows
   * PENDING_RECREATION for `pendingMs`, then it is gone and a new INITIATING endpoint for the same regions
   * takes its place (and activates, or fails, as any new endpoint).
   */
  z.object({ kind: z.literal('recreate'), activeMs: whole, pendingMs: whole }),
]);
export type Fault = z.infer<typeof FaultSchema>;

/** Faults that only apply to creates: a rule with one of them never matches another operation. */
export const CREATE_ONLY_FAULTS: ReadonlySet<Fault['kind']> = new Set([
  'lateCreate',
  'doubleCreate',
  'recreate',
]);

export const FaultRuleSchema = z.object({
  fault: FaultSchema,
  /** Which operations it applies to; all when omitted. */
  operations: z.array(SimOperationSchema).optional(),
  /** Only requests for this project. */
  groupId: z.string().optional(),
  /** How many matching requests it hits; unlimited when omitted (until clearFaults()). */
  times: z.number().int().min(1).optional(),
  /**
   * Each matching request is hit with this probability (0..1), drawn from the simulator's seeded random;
   * default 1. `times` still caps the hits. Rules are tried in the order injected: a request missed by
   * one rule's draw can be hit by the next matching rule.
   */
  probability: ProbabilitySchema.optional(),
});
export type FaultRule = z.infer<typeof FaultRuleSchema>;

/** The rule, checked; a RangeError naming each field that is wrong and the value given. */
export function parseFaultRule(rule: unknown): FaultRule {
  const parsed = FaultRuleSchema.safeParse(rule);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.join('.');
    const given = issue.path.reduce<unknown>(
      (value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key],
      rule,
    );
    return `${field || 'the rule'}: ${issue.message} (given ${JSON.stringify(given)})`;
  });
  throw new RangeError(`invalid fault rule: ${problems.join('; ')}`);
}
