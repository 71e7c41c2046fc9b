/**
 * Deployment settings: one typed, validated set shared by the CDK stack and the local runner,
 * so a laptop run behaves like the deployment. Each field's default is documented here and in
 * the README ("Configuration"). Set them as stack props or as CDK context (`cdk.json` or `-c`).
 */
import { z } from 'zod';
import { DEFAULT_API_VERSION, DEFAULT_BASE_URL } from '#atlas/types.ts';
import { CALL_MARGIN_MS, CALLS_TO_START, defaultCreateSettleSeconds } from '#lib/timing.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const SettingsSchema = z.strictObject({
  /** Atlas base URL when the profile secret has no BaseUrl. @default 'https://cloud.mongodb.com' */
  atlasBaseUrl: z.url().default(DEFAULT_BASE_URL),
  /** Atlas resource version sent in the media type. @default '2024-11-13' */
  atlasApiVersion: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date such as 2024-11-13')
    .default(DEFAULT_API_VERSION),
  /** Timeout of one Atlas HTTP request, ms. @default 10000 */
  atlasTimeoutMs: int(100, 120_000).default(10_000),
  /** Secret name prefix; a profile's secret is prefix + profile. @default 'cfn/atlas/profile/' */
  secretPrefix: z
    .string()
    .regex(/^[A-Za-z0-9/_+=.@-]{1,400}$/, 'must be a valid Secrets Manager name prefix')
    .default('cfn/atlas/profile/'),
  /** Profiles requests may name; the function may read exactly these secrets. @default ['default'] */
  allowedProfiles: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'each profile must be 1-64 of A-Z a-z 0-9 _ -'))
    .min(1, 'must name at least one profile')
    .default(['default']),
  /** How long a read secret is trusted before it is read again, s. @default 300 */
  secretMaxAgeSeconds: int(0, 86_400).default(300),
  /** Attempts of the provisioner before a retryable failure goes to the DLQ. @default 5 */
  maxAttempts: int(1, 50).default(5),
  /** Exponential backoff with full jitter: its base, s. @default 2 */
  backoffBaseSeconds: int(1, 43_200).default(2),
  /** Exponential backoff with full jitter: its cap, s. @default 900 */
  backoffCapSeconds: int(1, 43_200).default(900),
  /** SQS batch size of the provisioner's event source. @default 10 */
  batchSize: int(1, 100).default(10),
  /** Most concurrent provisioner invocations (event source maxConcurrency, 2-1000). @default 5 */
  maxConcurrency: int(2, 1000).default(5),
  /** Records of one batch processed at once. @default 10 */
  recordConcurrency: int(1, 100).default(10),
  /**
   * Seconds after a create whose outcome is unknown (timeout, reset, 5xx) before a listing decides
   * whether it was done; no create is sent for the key before then.
   * @default 3 x atlasTimeoutMs, at least 10
   */
  createSettleSeconds: int(1, 900).optional(),
  /** FAILED endpoints of one key deleted and created anew; the next one sends the request to the DLQ. @default 3 */
  maxEndpointFailures: int(1, 10).default(3),
  /**
   * Seconds after a create, an adoption of an endpoint in progress or a delete before its key is
   * first looked at again (one GET); each next follow-up comes twice as late. @default 10
   */
  followUpFirstSeconds: int(1, 900).default(10),
  /**
   * Longest spacing of follow-ups, s (at most SQS's 900 s message delay): how late at worst a
   * requester hears a status Atlas reached, and the GETs an endpoint in progress costs (one per
   * this many seconds). @default 30
   */
  followUpMaxSeconds: int(1, 900).default(30),
  /** Provisioner timeout, s. @default 60 */
  provisionTimeoutSeconds: int(10, 900).default(60),
  /** Status checker period, minutes. @default 5 */
  scheduleRateMinutes: int(1, 1440).default(5),
  /** Status checker timeout, s. @default 120 */
  checkTimeoutSeconds: int(10, 900).default(120),
  /** Minutes in PENDING_ACCEPTANCE before an endpoint is reported stuck. @default 1440 */
  pendingAcceptanceDeadlineMinutes: int(1, 100_000).default(1_440),
  /** Minutes in an in-progress status before an endpoint is reported stuck. @default 60 */
  inProgressDeadlineMinutes: int(1, 100_000).default(60),
  /** Alarm when the oldest request waits longer than this, s. @default 900 */
  oldestRequestAgeAlarmSeconds: int(60, 1_209_600).default(900),
  /** SNS topic ARN that alarms notify. @default - none: alarms notify nobody */
  alarmTopicArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN')
    .optional(),
  /** Event bus status events go to. @default 'default' (the account's default bus) */
  eventBusName: z
    .string()
    .regex(/^[A-Za-z0-9._/-]{1,256}$/, 'must be an event bus name')
    .default('default'),
  /** Source of the status events. @default 'atlas.backup-private-endpoints' */
  eventSource: z.string().min(1).max(256).default('atlas.backup-private-endpoints'),
  /** AWS accounts whose principals may send requests to the request queue (and put them on the front door bus). @default [] */
  requesterAccounts: z
    .array(z.string().regex(/^\d{12}$/, 'each account must be a 12-digit AWS account id'))
    .default([]),
  /** An AWS Organizations id whose principals may send requests, like requesterAccounts. @default - none */
  requesterOrganizationId: z
    .string()
    .regex(/^o-[a-z0-9]{10,32}$/, 'must be an AWS Organizations id such as o-a1b2c3d4e5')
    .optional(),
  /** Bus of the EventBridge front door: a rule there turns request events into queued requests. @default - none: no front door */
  requestEventBusName: z
    .string()
    .regex(/^[A-Za-z0-9._/-]{1,256}$/, 'must be an event bus name')
    .optional(),
  /** Sources the front door accepts: exact, or a prefix ending in `*`. Required with requestEventBusName. @default [] */
  requestEventSources: z
    .array(z.string().regex(/^[^*]{1,256}\*?$/, 'each source must be a name, or a prefix ending in *'))
    .default([]),
  /** Log retention of both functions, days (a value CloudWatch Logs accepts). @default 30 */
  logRetentionDays: int(1, 3653).default(30),
});

export type Settings = z.infer<typeof SettingsSchema> & { createSettleSeconds: number };
export type SettingsInput = z.input<typeof SettingsSchema>;

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** Validates settings and derived rules; the error names each setting and the value given. */
export function resolveSettings(input: SettingsInput = {}): Settings {
  const result = SettingsSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const name = i.path.join('.') || '(settings)';
      const given = i.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k], input);
      return `${name}: ${i.message} (given ${JSON.stringify(given)})`;
    });
    throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  }
  const s = {
    ...result.data,
    createSettleSeconds:
      result.data.createSettleSeconds ?? defaultCreateSettleSeconds(result.data.atlasTimeoutMs),
  };
  const problems: string[] = [];
  if (s.backoffCapSeconds < s.backoffBaseSeconds) {
    problems.push(
      `backoffCapSeconds (${s.backoffCapSeconds}) must be at least backoffBaseSeconds (${s.backoffBaseSeconds})`,
    );
  }
  if (s.followUpMaxSeconds < s.followUpFirstSeconds) {
    problems.push(
      `followUpMaxSeconds (${s.followUpMaxSeconds}) must be at least followUpFirstSeconds (${s.followUpFirstSeconds})`,
    );
  }
  // A record starts only with time for its clean path (list, create) and the writes after it.
  const neededMs = CALLS_TO_START * s.atlasTimeoutMs + CALL_MARGIN_MS;
  if (s.provisionTimeoutSeconds * 1000 < neededMs + 1000) {
    problems.push(
      `provisionTimeoutSeconds (${s.provisionTimeoutSeconds}) leaves no time to start a record: it needs more than ${CALLS_TO_START} x atlasTimeoutMs (${s.atlasTimeoutMs}) + ${CALL_MARGIN_MS} ms, so at least ${Math.ceil((neededMs + 1000) / 1000)} s`,
    );
  }
  if (s.createSettleSeconds * 1000 < s.atlasTimeoutMs) {
    problems.push(
      `createSettleSeconds (${s.createSettleSeconds}) must be at least atlasTimeoutMs (${s.atlasTimeoutMs}) in seconds: a shorter settle period lists before a create still in flight could land`,
    );
  }
  if (s.checkTimeoutSeconds * 1000 < 2 * s.atlasTimeoutMs) {
    problems.push(
      `checkTimeoutSeconds (${s.checkTimeoutSeconds}) must be at least 2 x atlasTimeoutMs (${s.atlasTimeoutMs}): the checker could not finish one listing`,
    );
  }
  if (problems.length > 0) throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  checkFrontDoor(s);
  return s;
}

/** A front door accepts requests from named sources only. */
function checkFrontDoor(s: Settings): void {
  if (s.requestEventBusName !== undefined && s.requestEventSources.length === 0) {
    throw new SettingsError(
      `invalid settings: requestEventSources: name at least one source when requestEventBusName is set (given ${JSON.stringify(s.requestEventBusName)})`,
    );
  }
  if (s.requestEventBusName === undefined && s.requestEventSources.length > 0) {
    throw new SettingsError(
      `invalid settings: requestEventSources: needs requestEventBusName, the bus of the front door (given ${JSON.stringify(s.requestEventSources)})`,
    );
  }
}

/** The redrive safety net sits above the function's own attempt budget. */
export const maxReceiveCount = (s: Settings) => s.maxAttempts + 3;
/** AWS asks for a queue visibility timeout of at least 6 times the function timeout. */
export const visibilityTimeoutSeconds = (s: Settings) => s.provisionTimeoutSeconds * 6;
/** A worker's lease on a key outlives any invocation that could hold it. */
export const leaseSeconds = (s: Settings) => s.provisionTimeoutSeconds * 2;

/** The checker stops starting projects when this much of its run is left: a quarter of it, at most 10 s. */
export const safetyMarginMs = (s: Settings) => Math.min(10_000, s.checkTimeoutSeconds * 250);

/** Environment of the provisioning function (names from functions/lib/config.ts). */
export function provisionEnvironment(
  s: Settings,
  resources: { requestQueueUrl: string; dlqUrl: string; rejectedQueueUrl: string; tableName: string },
): Record<string, string> {
  return {
    ...commonEnvironment(s, resources.tableName),
    REQUEST_QUEUE_URL: resources.requestQueueUrl,
    DLQ_URL: resources.dlqUrl,
    REJECTED_QUEUE_URL: resources.rejectedQueueUrl,
    MAX_ATTEMPTS: String(s.maxAttempts),
    BACKOFF_BASE_SECONDS: String(s.backoffBaseSeconds),
    BACKOFF_CAP_SECONDS: String(s.backoffCapSeconds),
    RECORD_CONCURRENCY: String(s.recordConcurrency),
    LEASE_SECONDS: String(leaseSeconds(s)),
    CREATE_SETTLE_SECONDS: String(s.createSettleSeconds),
    MAX_ENDPOINT_FAILURES: String(s.maxEndpointFailures),
    FOLLOW_UP_FIRST_SECONDS: String(s.followUpFirstSeconds),
    FOLLOW_UP_MAX_SECONDS: String(s.followUpMaxSeconds),
  };
}

/** Environment of the status checker. */
export function checkStatusEnvironment(
  s: Settings,
  resources: { tableName: string; requestQueueUrl: string },
): Record<string, string> {
  return {
    ...commonEnvironment(s, resources.tableName),
    REQUEST_QUEUE_URL: resources.requestQueueUrl,
    CREATE_SETTLE_SECONDS: String(s.createSettleSeconds),
    PENDING_ACCEPTANCE_DEADLINE_MINUTES: String(s.pendingAcceptanceDeadlineMinutes),
    IN_PROGRESS_DEADLINE_MINUTES: String(s.inProgressDeadlineMinutes),
    SAFETY_MARGIN_MS: String(safetyMarginMs(s)),
  };
}

function commonEnvironment(s: Settings, tableName: string): Record<string, string> {
  return {
    ATLAS_BASE_URL: s.atlasBaseUrl,
    ATLAS_API_VERSION: s.atlasApiVersion,
    ATLAS_TIMEOUT_MS: String(s.atlasTimeoutMs),
    SECRET_PREFIX: s.secretPrefix,
    ALLOWED_PROFILES: s.allowedProfiles.join(','),
    SECRET_MAX_AGE_SECONDS: String(s.secretMaxAgeSeconds),
    LEDGER_TABLE_NAME: tableName,
    EVENT_BUS_NAME: s.eventBusName,
    EVENT_SOURCE: s.eventSource,
  };
}
