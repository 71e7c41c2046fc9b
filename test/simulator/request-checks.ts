/**
 * An Admin API request checked against the spec copy and Atlas's documented rules: the versioned
 * media types, path and query parameters, and the body. Each problem becomes the error Atlas
 * answers it with (see the status choices in ./index.ts).
 */
import { type Answer, apiError } from '#test/simulator/answers.ts';
import type { SchemaProblem, SpecOperation } from '#test/simulator/spec.ts';

const ATLAS_MEDIA_TYPE = /^application\/vnd\.atlas\.([^+]*)\+json$/;

/** A request that breaks the spec (or Atlas's documented rules), and the error Atlas answers it with. */
export interface Violation {
  status: number;
  errorCode: string;
  detail: string;
  parameters?: Array<Record<string, unknown>>;
  /** Set for body problems: listed in badRequestDetail.fields. */
  field?: string;
}

/** The answer to the first violation, listing as fields every body problem with the same status. */
export function violationAnswer(first: Violation, all: Violation[]): Answer {
  const fields = all.flatMap((v) =>
    v.status === first.status && v.field !== undefined ? [{ field: v.field, description: v.detail }] : [],
  );
  return apiError(first.status, first.errorCode, first.detail, {
    ...(first.parameters && { parameters: first.parameters }),
    fields,
  });
}

/** The resource version an Accept or Content-Type value resolves to, or the violation it is. */
export function resolveVersion(
  header: string | undefined,
  name: 'Accept' | 'Content-Type',
  versions: string[],
): { version: string } | { violation: Violation } {
  const notAcceptable = name === 'Accept' ? 406 : 415;
  const types = (header ?? '')
    .split(',')
    .map((t) => t.split(';')[0]?.trim().toLowerCase() ?? '')
    .filter(Boolean);
  const dates = types.flatMap((t) => {
    const m = ATLAS_MEDIA_TYPE.exec(t);
    return m ? [m[1] ?? ''] : [];
  });
  if (dates.length === 0) {
    return {
      violation: {
        status: notAcceptable,
        errorCode: name === 'Accept' ? 'NOT_ACCEPTABLE' : 'UNSUPPORTED_MEDIA_TYPE',
        detail: `${name} ${header ? `"${header}" names` : 'is missing, so it names'} no versioned media type application/vnd.atlas.YYYY-MM-DD+json.`,
        parameters: [{ [name]: header ?? null }],
      },
    };
  }
  for (const date of dates) {
    const parsed = new Date(`${date}T00:00:00Z`);
    const valid =
      /^\d{4}-\d{2}-\d{2}$/.test(date) &&
      !Number.isNaN(parsed.getTime()) &&
      parsed.toISOString().startsWith(date);
    const version = valid ? versions.filter((v) => v <= date).at(-1) : undefined;
    if (version) return { version };
  }
  return {
    violation: {
      status: notAcceptable,
      errorCode: name === 'Accept' ? 'INVALID_VERSION_DATE' : 'UNSUPPORTED_MEDIA_TYPE',
      detail: `${name} version ${dates.join(', ')} is not a date on or after ${versions[0]}, the oldest resource version.`,
      parameters: [{ [name]: header ?? null }],
    },
  };
}

/** Path and query parameters checked against their schemas; unknown query parameters too. */
export function parameterViolations(
  operation: SpecOperation,
  params: Record<string, string>,
  query: URLSearchParams,
) {
  const toViolation = (p: SchemaProblem, value: string): Violation => ({
    status: 400,
    errorCode: p.keyword === 'enum' ? 'INVALID_ENUM_VALUE' : 'INVALID_PARAMETER',
    detail: `Invalid ${p.field} "${value}": ${p.message}.`,
    parameters: [{ [p.field]: value }],
  });
  const path: Violation[] = [];
  const queryProblems: Violation[] = [];
  for (const param of operation.parameters) {
    const value = param.in === 'path' ? params[param.name] : (query.get(param.name) ?? undefined);
    if (value === undefined) continue;
    (param.in === 'path' ? path : queryProblems).push(
      ...param.check(value).map((p) => toViolation(p, value)),
    );
  }
  const declared = operation.parameters.filter((p) => p.in === 'query').map((p) => p.name);
  for (const name of new Set(query.keys())) {
    if (declared.includes(name)) continue;
    queryProblems.push({
      status: 400,
      errorCode: 'INVALID_PARAMETER',
      detail: `Unknown query parameter ${name}: ${operation.operationId} takes ${declared.join(', ')}.`,
      parameters: [{ [name]: query.get(name) }],
    });
  }
  return { path, query: queryProblems };
}

/** The body's problems, and the body itself when it is JSON. */
export function bodyViolations(
  operation: SpecOperation,
  raw: Buffer,
): { violations: Violation[]; body?: unknown } {
  const spec = operation.requestBody;
  if (!spec) return { violations: [] };
  if (raw.length === 0) {
    return spec.required
      ? {
          violations: [
            {
              status: 400,
              errorCode: 'VALIDATION_ERROR',
              detail: 'The request body is required.',
              field: 'body',
            },
          ],
        }
      : { violations: [] };
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    return {
      violations: [
        {
          status: 400,
          errorCode: 'INVALID_JSON',
          detail: `The request body is not valid JSON: ${(error as Error).message}.`,
          field: 'body',
        },
      ],
    };
  }
  const violations: Violation[] = spec.check(body).map((p) => ({
    status: 400,
    errorCode:
      p.keyword === 'enum'
        ? 'INVALID_ENUM_VALUE'
        : p.keyword === 'additionalProperties'
          ? 'INVALID_ATTRIBUTE'
          : 'VALIDATION_ERROR',
    detail:
      p.keyword === 'additionalProperties' ? `Invalid attribute ${p.field} specified.` : `${p.message}.`,
    parameters: [{ field: p.field }],
    field: p.field,
  }));
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    for (const field of ['cloudProvider', 'regionName']) {
      if (!(field in body)) {
        violations.push({
          status: 400,
          errorCode: 'MISSING_ATTRIBUTE',
          detail: `The required attribute ${field} was not specified.`,
          parameters: [{ field }],
          field,
        });
      }
    }
  }
  return { violations, body };
}
