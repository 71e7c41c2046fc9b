/**
 * The functions' environment contract: every variable a function reads, how its value is
 * checked and the option it becomes in the code (camelCase, the setting's own name where it
 * has one). The stack writes it from the settings (infra/settings.ts, which owns the defaults
 * and derives the lease and the safety margin); each function reads its list once, at cold
 * start, and a missing or bad variable fails the start with a message naming it (README,
 * "Configuration"). Depends on zod/mini only, so `cdk synth` imports it without any SDK.
 */

import { baseUrlProblem } from '#atlas/base-url.ts';
import * as z from '#lib/zod.ts';
import { RequesterRegistrySchema } from '#messages/requesters.ts';

/** An integer in [min, max], from a number or its text (an environment variable, a `-c` value). */
export const int = (min: number, max: number) =>
  z.coerce.number().check(z.int(), z.minimum(min), z.maximum(max));

/** An EventBridge bus name (never an ARN): the status events' bus and the front door's. */
export const eventBusName = z
  .string()
  .check(z.regex(/^[A-Za-z0-9._/-]{1,256}$/, 'must be an event bus name'));

const text = z.string().check(z.minLength(1));

const atlasBaseUrl = z.string().check(
  z.check((ctx) => {
    const problem = baseUrlProblem(ctx.value);
    if (problem !== undefined) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  }),
);

/**
 * A variable: its name in the environment, the schema of its value; a list travels
 * comma-separated, a structure as JSON.
 */
interface Variable<S extends z.ZodMiniType = z.ZodMiniType> {
  readonly name: string;
  readonly schema: S;
  readonly encoding?: 'list' | 'json';
}

const variable = <S extends z.ZodMiniType>(
  name: string,
  schema: S,
  encoding?: 'list' | 'json',
): Variable<S> => (encoding ? { name, schema, encoding } : { name, schema });

/** Every variable of either function, by its option name. */
export const VARIABLES = {
  /** Atlas base URL when the profile secret has no BaseUrl: https, or http to a loopback host. */
  atlasBaseUrl: variable('ATLAS_BASE_URL', atlasBaseUrl),
  atlasApiVersion: variable(
    'ATLAS_API_VERSION',
    z.string().check(z.regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date such as 2024-11-13')),
  ),
  atlasTimeoutMs: variable('ATLAS_TIMEOUT_MS', int(100, 120_000)),
  /** Secret name = prefix + profile; the characters Secrets Manager allows in a name. */
  secretPrefix: variable(
    'SECRET_PREFIX',
    z.string().check(z.regex(/^[A-Za-z0-9/_+=.@-]{1,400}$/, 'must be a valid Secrets Manager name prefix')),
  ),
  /** Profiles a request may name. */
  allowedProfiles: variable(
    'ALLOWED_PROFILES',
    z
      .array(
        z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'each profile must be 1-64 of A-Z a-z 0-9 _ -')),
      )
      .check(z.minLength(1, 'must name at least one profile')),
    'list',
  ),
  secretMaxAgeSeconds: variable('SECRET_MAX_AGE_SECONDS', int(0, 86_400)),
  ledgerTableName: variable('LEDGER_TABLE_NAME', text),
  eventBusName: variable('EVENT_BUS_NAME', eventBusName),
  /** Source of the status events (EventBridge allows 256 characters). */
  eventSource: variable('EVENT_SOURCE', z.string().check(z.minLength(1), z.maxLength(256))),
  /**
   * Who may ask for what (functions/lib/messages/requesters.ts): each requester's grant, its own
   * request queue (a record's requester is the queue it came from) and its dead-letter queue.
   */
  requesterRegistry: variable('REQUESTERS', RequesterRegistrySchema, 'json'),
  /**
   * The provisioner's private queue: waits, follow-ups, deferrals and the checker's hand-backs.
   * Only the two functions may send to it, so its `Requester` attribute is trusted.
   */
  continuationQueueUrl: variable('CONTINUATION_QUEUE_URL', z.url()),
  continuationQueueArn: variable(
    'CONTINUATION_QUEUE_ARN',
    z.string().check(z.regex(/^arn:/, 'must be an ARN')),
  ),
  rejectedQueueUrl: variable('REJECTED_QUEUE_URL', z.url()),
  /** Attempts before a retryable failure goes to the DLQ (from ApproximateReceiveCount). */
  maxAttempts: variable('MAX_ATTEMPTS', int(1, 50)),
  backoffBaseSeconds: variable('BACKOFF_BASE_SECONDS', int(1, 43_200)),
  backoffCapSeconds: variable('BACKOFF_CAP_SECONDS', int(1, 43_200)),
  /** Records of one batch processed at once. */
  recordConcurrency: variable('RECORD_CONCURRENCY', int(1, 100)),
  /** How long a worker's claim on a natural key lasts; must outlive the function timeout. */
  leaseSeconds: variable('LEASE_SECONDS', int(10, 3_600)),
  /** Seconds after a create in doubt was sent before a listing decides it (see timing.ts). */
  createSettleSeconds: variable('CREATE_SETTLE_SECONDS', int(1, 900)),
  /** FAILED endpoints of one key deleted and created anew before the request goes to the DLQ. */
  maxEndpointFailures: variable('MAX_ENDPOINT_FAILURES', int(1, 10)),
  /** Seconds before the first follow-up of a key whose endpoint is in progress; then doubling. */
  followUpFirstSeconds: variable('FOLLOW_UP_FIRST_SECONDS', int(1, 900)),
  /** Longest spacing of follow-ups (SQS delays a message 900 s at most). */
  followUpMaxSeconds: variable('FOLLOW_UP_MAX_SECONDS', int(1, 900)),
  /** Minutes an endpoint may wait in PENDING_ACCEPTANCE before it is reported stuck. */
  pendingAcceptanceDeadlineMinutes: variable('PENDING_ACCEPTANCE_DEADLINE_MINUTES', int(1, 100_000)),
  /** Minutes an endpoint may stay in an in-progress status before it is reported stuck. */
  inProgressDeadlineMinutes: variable('IN_PROGRESS_DEADLINE_MINUTES', int(1, 100_000)),
  /** Stop starting new work when less than this much of the invocation remains. */
  safetyMarginMs: variable('SAFETY_MARGIN_MS', int(0, 600_000)),
  /** Projects the checker checks at once. */
  projectConcurrency: variable('PROJECT_CONCURRENCY', int(1, 100)),
} as const satisfies Record<string, Variable>;

export type VariableName = keyof typeof VARIABLES;

/** What both functions read: Atlas access, the ledger and the status events. */
const COMMON = [
  'atlasBaseUrl',
  'atlasApiVersion',
  'atlasTimeoutMs',
  'secretPrefix',
  'allowedProfiles',
  'secretMaxAgeSeconds',
  'ledgerTableName',
  'eventBusName',
  'eventSource',
] as const satisfies readonly VariableName[];

/** The variables each function reads, and nothing else: the stack writes exactly these. */
export const FUNCTION_VARIABLES = {
  provision: [
    ...COMMON,
    'requesterRegistry',
    'continuationQueueUrl',
    'continuationQueueArn',
    'rejectedQueueUrl',
    'maxAttempts',
    'backoffBaseSeconds',
    'backoffCapSeconds',
    'recordConcurrency',
    'leaseSeconds',
    'createSettleSeconds',
    'maxEndpointFailures',
    'followUpFirstSeconds',
    'followUpMaxSeconds',
  ],
  checkStatus: [
    ...COMMON,
    'continuationQueueUrl',
    'pendingAcceptanceDeadlineMinutes',
    'inProgressDeadlineMinutes',
    'safetyMarginMs',
    'projectConcurrency',
    'followUpFirstSeconds',
  ],
} as const satisfies Record<string, readonly VariableName[]>;

export type FunctionName = keyof typeof FUNCTION_VARIABLES;

/** The options a function's environment becomes, by option name. */
export type FunctionEnvironment<F extends FunctionName> = {
  [K in (typeof FUNCTION_VARIABLES)[F][number]]: z.output<(typeof VARIABLES)[K]['schema']>;
};
export type ProvisionEnvironment = FunctionEnvironment<'provision'>;
export type CheckStatusEnvironment = FunctionEnvironment<'checkStatus'>;

/**
 * Rules across variables: each `option` must be at least its `floor` (both option names). The
 * stack's settings check them with the values named (infra/settings.ts), a function at cold start
 * with the variables named.
 */
export const AT_LEAST = [
  { option: 'backoffCapSeconds', floor: 'backoffBaseSeconds' },
  { option: 'followUpMaxSeconds', floor: 'followUpFirstSeconds' },
] as const satisfies readonly { option: VariableName; floor: VariableName }[];

/** The rules a function's options break, each as a problem naming its variables. */
function brokenRules(fn: FunctionName, options: Record<string, unknown>): string[] {
  const reads: readonly VariableName[] = FUNCTION_VARIABLES[fn];
  return AT_LEAST.filter(
    ({ option, floor }) =>
      reads.includes(option) &&
      reads.includes(floor) &&
      (options[option] as number) < (options[floor] as number),
  ).map(({ option, floor }) => `${VARIABLES[option].name}: must be at least ${VARIABLES[floor].name}`);
}

export class EnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvironmentError';
  }
}

const splitList = z.transform((s: string) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);

const parseJson = z.transform((s: string, ctx) => {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    ctx.issues.push({ code: 'custom', message: 'must be JSON', input: s });
    return z.NEVER;
  }
});

/** The function's variables as one object schema keyed by variable name, in the contract's order. */
function schemaOf(fn: FunctionName): z.ZodMiniObject {
  return z.object(
    Object.fromEntries(
      FUNCTION_VARIABLES[fn].map((option) => {
        const v: Variable = VARIABLES[option];
        const schema =
          v.encoding === 'list'
            ? z.pipe(z.pipe(z.string(), splitList), v.schema as z.ZodMiniType<unknown, string[]>)
            : v.encoding === 'json'
              ? z.pipe(z.pipe(z.string(), parseJson), v.schema as z.ZodMiniType<unknown, unknown>)
              : v.schema;
        return [v.name, schema];
      }),
    ),
  );
}

/**
 * Reads and validates a function's variables into its options; an empty variable counts as
 * unset. The error names every missing or bad variable and why.
 */
export function readEnvironment<F extends FunctionName>(
  fn: F,
  env: Record<string, string | undefined> = process.env,
): FunctionEnvironment<F> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schemaOf(fn).safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new EnvironmentError(`invalid configuration: ${problems.join('; ')}`);
  }
  const data = result.data as Record<string, unknown>;
  const options = Object.fromEntries(
    FUNCTION_VARIABLES[fn].map((o) => [o, data[VARIABLES[o].name]]),
  ) as FunctionEnvironment<F>;
  const problems = brokenRules(fn, options);
  if (problems.length > 0) throw new EnvironmentError(`invalid configuration: ${problems.join('; ')}`);
  return options;
}

/**
 * Writes a function's variables from its options (validated settings; resource names may be
 * CDK tokens): exactly the variables the function reads.
 */
export function writeEnvironment<F extends FunctionName>(
  fn: F,
  options: FunctionEnvironment<F>,
): Record<string, string> {
  const values = options as Record<string, unknown>;
  return Object.fromEntries(
    FUNCTION_VARIABLES[fn].map((option) => {
      const value = values[option];
      const v: Variable = VARIABLES[option];
      const text =
        v.encoding === 'json'
          ? JSON.stringify(value)
          : Array.isArray(value)
            ? value.join(',')
            : String(value);
      return [v.name, text];
    }),
  );
}
