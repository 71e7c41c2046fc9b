/** The v1 request contract: one JSON object per SQS message body. */
import { z } from 'zod';
import { ATLAS_REGIONS, CLOUD_PROVIDERS } from '#atlas/types.ts';
import { InvalidRequestError } from '#lib/errors.ts';

export const MAX_BODY_BYTES = 16 * 1024;

const region = z.enum(ATLAS_REGIONS, {
  error: (issue) =>
    `must be one of the Atlas regions (${ATLAS_REGIONS.join(', ')}), got ${JSON.stringify(issue.input)}`,
});

export const ProvisionRequestSchema = z.strictObject({
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -'),
  action: z.enum(['create', 'delete']).default('create'),
  groupId: z.string().regex(/^[a-f0-9]{24}$/, 'must be a 24-character lowercase hex Atlas project id'),
  cloudProvider: z.enum(CLOUD_PROVIDERS),
  regionName: region,
  vpcRegionName: region.optional(),
  profile: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -')
    .default('default'),
});

export type ProvisionRequest = z.infer<typeof ProvisionRequestSchema>;
export type ProvisionRequestInput = z.input<typeof ProvisionRequestSchema>;

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
 * Parses an SQS message body into a request, or throws InvalidRequestError naming every
 * field and problem. The requestId is kept on the error when it can be read, for correlation.
 */
export function parseRequest(body: string): ProvisionRequest {
  const size = Buffer.byteLength(body, 'utf8');
  if (size > MAX_BODY_BYTES) {
    throw new InvalidRequestError([`body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new InvalidRequestError([`body is not valid JSON (${(cause as Error).message})`], undefined, {
      cause,
    });
  }
  const result = ProvisionRequestSchema.safeParse(json);
  if (result.success) return result.data;
  const requestId =
    typeof json === 'object' &&
    json !== null &&
    typeof (json as { requestId?: unknown }).requestId === 'string'
      ? ((json as { requestId: string }).requestId.slice(0, 128) as string)
      : undefined;
  // Unknown fields first: a typo such as `regionname` is the likeliest cause of the other issues.
  const ordered = [...result.error.issues].sort(
    (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
  );
  const issues = ordered.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
    const path = issue.path.length > 0 ? issue.path.join('.') : 'body';
    return `${path}: ${issue.message}`;
  });
  throw new InvalidRequestError(issues, requestId);
}
