/**
 * Configuration from the environment, read and validated once at cold start. A missing or bad
 * value fails the cold start with a message naming the variable. The CDK stack and the local
 * runner set exactly these variables (see README, "Configuration").
 */
import { z } from 'zod';
import { baseUrlProblem } from '#atlas/base-url.ts';
import { DEFAULT_API_VERSION, DEFAULT_BASE_URL } from '#atlas/types.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'each profile must be 1-64 of A-Z a-z 0-9 _ -')));

const atlas = {
  ATLAS_BASE_URL: z
    .string()
    .check((ctx) => {
      const problem = baseUrlProblem(ctx.value);
      if (problem !== undefined) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
    })
    .default(DEFAULT_BASE_URL),
  ATLAS_API_VERSION: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date such as 2024-11-13')
    .default(DEFAULT_API_VERSION),
  ATLAS_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** Secret name = prefix + profile. */
  SECRET_PREFIX: z.string().min(1).default('cfn/atlas/profile/'),
  /** Comma-separated profiles a request may name; empty means only "default". */
  ALLOWED_PROFILES: list.default(['default']),
  SECRET_MAX_AGE_SECONDS: int(0, 86_400).default(300),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1).default('default'),
  EVENT_SOURCE: z.string().min(1).default('atlas.backup-private-endpoints'),
};

export const ProvisionConfigSchema = z
  .object({
    ...atlas,
    REQUEST_QUEUE_URL: z.url(),
    DLQ_URL: z.url(),
    REJECTED_QUEUE_URL: z.url(),
    /** Attempts before a retryable failure goes to the DLQ (from ApproximateReceiveCount). */
    MAX_ATTEMPTS: int(1, 100).default(5),
    BACKOFF_BASE_SECONDS: int(1, 43_200).default(2),
    BACKOFF_CAP_SECONDS: int(1, 43_200).default(900),
    /** Records of one batch processed at once. */
    RECORD_CONCURRENCY: int(1, 100).default(10),
    /** How long a worker's claim on a natural key lasts; must outlive the function timeout. */
    LEASE_SECONDS: int(10, 3_600).default(900),
    /** Seconds after a create in doubt was sent before a listing decides it (see timing.ts). */
    CREATE_SETTLE_SECONDS: int(1, 900).default(30),
    /** FAILED endpoints of one key deleted and created anew before the request goes to the DLQ. */
    MAX_ENDPOINT_FAILURES: int(1, 10).default(3),
    /** Seconds before the first follow-up of a key whose endpoint is in progress; then doubling. */
    FOLLOW_UP_FIRST_SECONDS: int(1, 900).default(10),
    /** Longest spacing of follow-ups. */
    FOLLOW_UP_MAX_SECONDS: int(1, 900).default(30),
  })
  .refine((c) => c.FOLLOW_UP_MAX_SECONDS >= c.FOLLOW_UP_FIRST_SECONDS, {
    path: ['FOLLOW_UP_MAX_SECONDS'],
    message: 'must be at least FOLLOW_UP_FIRST_SECONDS',
  });
export type ProvisionConfig = z.infer<typeof ProvisionConfigSchema>;

export const CheckStatusConfigSchema = z.object({
  ...atlas,
  /** Minutes an endpoint may wait in PENDING_ACCEPTANCE before it is reported stuck. */
  PENDING_ACCEPTANCE_DEADLINE_MINUTES: int(1, 100_000).default(1_440),
  /** Minutes an endpoint may stay in an in-progress status before it is reported stuck. */
  IN_PROGRESS_DEADLINE_MINUTES: int(1, 100_000).default(60),
  /** Stop starting new work when less than this much of the invocation remains. */
  SAFETY_MARGIN_MS: int(0, 600_000).default(10_000),
  /** Projects checked at once. */
  PROJECT_CONCURRENCY: int(1, 100).default(4),
  /** Where a key whose endpoint FAILED is handed back to the provisioner. */
  REQUEST_QUEUE_URL: z.url(),
  /** Seconds after a create in doubt was sent before a listing decides it. */
  CREATE_SETTLE_SECONDS: int(1, 900).default(30),
});
export type CheckStatusConfig = z.infer<typeof CheckStatusConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates the environment against a schema; the error names every bad variable and why. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}
