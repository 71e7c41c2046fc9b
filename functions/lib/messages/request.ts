/** The v1 request contract: one JSON object per SQS message body. */
import { ATLAS_REGIONS, type AtlasRegion, CLOUD_PROVIDERS, type CloudProvider } from '#atlas/types.ts';
import { InvalidRequestError } from '#lib/errors.ts';
import * as z from '#lib/zod.ts';
import { findDuplicateKeys, readTopLevelField } from '#messages/json-scan.ts';

export const MAX_BODY_BYTES = 16 * 1024;
/**
 * The longest requestId an invalid body's event and parked message still carry for correlation:
 * far above the contract's 128, far below what would take an event near EventBridge's 256 KB.
 */
export const MAX_CORRELATION_ID_CHARS = 1_024;

/**
 * A value quoted for a reason: JSON-quoted, every character outside printable ASCII escaped
 * (so a homoglyph, a zero-width or a bidi control is visible) and long values shortened.
 */
export function quoteValue(value: unknown, max = 64): string {
  const text = typeof value === 'string' && value.length > max ? `${value.slice(0, max)}…` : value;
  const quoted = JSON.stringify(text) ?? String(text);
  return quoted.replace(/[^\x20-\x7e]/gu, (c) => {
    const code = c.codePointAt(0) ?? 0;
    if (c === '…') return c;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const region = z.enum(ATLAS_REGIONS, {
  error: (issue) =>
    `must be one of the Atlas regions (${ATLAS_REGIONS.join(', ')}), got ${quoteValue(issue.input)}`,
});

export const ProvisionRequestSchema = z.strictObject({
  requestId: z.string().check(
    z.regex(REQUEST_ID, {
      error: (issue) => {
        const id = String(issue.input);
        const got =
          id.length < 1 || id.length > 128
            ? `${id.length} characters`
            : `${quoteValue(id.match(/[^A-Za-z0-9._:-]/u)?.[0])} at position ${id.search(/[^A-Za-z0-9._:-]/u) + 1}`;
        return `must be 1-128 characters of A-Z a-z 0-9 . _ : - (got ${got})`;
      },
    }),
  ),
  action: z._default(z.enum(['create', 'delete']), 'create'),
  groupId: z
    .string()
    .check(z.regex(/^[a-f0-9]{24}$/, 'must be a 24-character lowercase hex Atlas project id')),
  cloudProvider: z.enum(CLOUD_PROVIDERS),
  regionName: region,
  vpcRegionName: z.optional(region),
  profile: z._default(
    z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -')),
    'default',
  ),
});

/** A valid v1 request, defaults filled in (events/schema/request.v1.json). */
export interface ProvisionRequest {
  /** The requester's correlation id: 1-128 characters of A-Z a-z 0-9 . _ : - */
  requestId: string;
  /** @default 'create' */
  action: 'create' | 'delete';
  /** The Atlas project id: 24 lowercase hex characters. */
  groupId: string;
  cloudProvider: CloudProvider;
  /** The Atlas region of the backup snapshots' bucket. */
  regionName: AtlasRegion;
  /** The region of the VPC the endpoint is for. @default - regionName */
  vpcRegionName?: AtlasRegion;
  /** The credentials profile: the secret <secretPrefix><profile>. @default 'default' */
  profile: string;
}

/** A request as written: `action` and `profile` may be left out. */
export type ProvisionRequestInput = Omit<ProvisionRequest, 'action' | 'profile'> &
  Partial<Pick<ProvisionRequest, 'action' | 'profile'>>;

/**
 * The natural key: one endpoint at most per project, provider, region and VPC region. Without a
 * vpcRegionName the endpoint is in the bucket's own region, so both spellings share one key.
 */
export function naturalKey(
  r: Pick<ProvisionRequest, 'groupId' | 'cloudProvider' | 'regionName' | 'vpcRegionName'>,
) {
  return `${r.groupId}#${r.cloudProvider}#${r.regionName}#${r.vpcRegionName ?? r.regionName}`;
}

/**
 * The requestId of a body, read leniently (oversized, not JSON, or invalid), for correlation
 * only, with the contract issue it raises. Kept verbatim when it is a string of 1 to
 * MAX_CORRELATION_ID_CHARS characters, never shortened.
 */
function correlationId(body: string): { requestId?: string; issues: string[] } {
  const field = readTopLevelField(body, 'requestId');
  if (field.found !== 'string') return { issues: [] };
  const checked = ProvisionRequestSchema.shape.requestId.safeParse(field.value);
  const fits = field.value.length >= 1 && field.value.length <= MAX_CORRELATION_ID_CHARS;
  return {
    ...(fits && { requestId: field.value }),
    issues: checked.success ? [] : checked.error.issues.map((i) => `requestId: ${i.message}`),
  };
}

// String(symbol) is symbol.toString(): every key converts the same way.
const pathText = (path: ReadonlyArray<PropertyKey>) =>
  path.length > 0 ? path.map(String).join('.') : 'body';

/**
 * Parses an SQS message body into a request, or throws InvalidRequestError naming every field
 * and problem. Strict JSON: a key repeated in any object is rejected, never last-wins. The
 * requestId is kept on the error whenever it can be read, even from an oversized or invalid body.
 */
export function parseRequest(body: string): ProvisionRequest {
  const size = Buffer.byteLength(body, 'utf8');
  if (size > MAX_BODY_BYTES) {
    const { requestId, issues } = correlationId(body);
    throw new InvalidRequestError(
      [`body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`, ...issues],
      requestId,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    const { requestId, issues } = correlationId(body);
    throw new InvalidRequestError(
      [`body is not valid JSON (${(cause as Error).message})`, ...issues],
      requestId,
      { cause },
    );
  }
  const duplicates = duplicateKeyIssues(body);
  const result = ProvisionRequestSchema.safeParse(json);
  if (result.success && duplicates.length === 0) return result.data;
  const issues = result.success ? [] : schemaIssues(result.error.issues);
  throw new InvalidRequestError([...duplicates, ...issues], correlationId(body).requestId);
}

/** At most this many duplicate keys are named: a reason must stay far below an event's size limit. */
const MAX_DUPLICATES_NAMED = 10;

const segmentText = (segment: string | number) =>
  typeof segment === 'number' || /^[A-Za-z0-9_$-]{1,64}$/.test(segment)
    ? String(segment)
    : quoteValue(segment, 32);

function duplicateKeyIssues(body: string): string[] {
  const found = findDuplicateKeys(body);
  const named = found
    .slice(0, MAX_DUPLICATES_NAMED)
    .map((path) => `${path.map(segmentText).join('.')}: duplicate key ${quoteValue(path.at(-1))}`);
  const more = found.length - named.length;
  return more > 0 ? [...named, `and ${more} more duplicate keys`] : named;
}

function schemaIssues(found: z.core.$ZodIssue[]): string[] {
  // Unknown fields first: a typo such as `regionname` is the likeliest cause of the other issues.
  const ordered = [...found].sort(
    (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
  );
  return ordered.map((issue) => {
    if (issue.code === 'unrecognized_keys')
      return `unknown field(s): ${issue.keys.map((k) => (/^[\x21-\x7e]{1,64}$/.test(k) ? k : quoteValue(k))).join(', ')}`;
    return `${pathText(issue.path)}: ${issue.message}`;
  });
}
