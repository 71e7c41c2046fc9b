/**
 * The official spec copy (test/simulator/), dereferenced and compiled into validators for the
 * simulator's request checks and the contract tests' response checks.
 */
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { OpenAPIV3 } from 'openapi-types';
import type { ApiOperation } from '#test/simulator/fault-schema.ts';

export type { ApiOperation } from '#test/simulator/fault-schema.ts';

export const SPEC_PATH = fileURLToPath(
  new URL('./backup-private-endpoints.wire.openapi.yaml', import.meta.url),
);

const OPERATION_IDS: Record<string, ApiOperation> = {
  listGroupBackupPrivateEndpoints: 'list',
  createGroupBackupPrivateEndpoint: 'create',
  getGroupBackupPrivateEndpoint: 'get',
  deleteGroupBackupPrivateEndpoint: 'delete',
};

const ATLAS_MEDIA_TYPE = /^application\/vnd\.atlas\.(\d{4}-\d{2}-\d{2})\+json$/;

/** One problem found validating a value against the spec. */
export interface SchemaProblem {
  /** Dotted path of the offending field ('' for the value itself). */
  field: string;
  /** The failing JSON Schema keyword: enum, pattern, additionalProperties, type, required, ... */
  keyword: string;
  message: string;
}

export interface SpecParameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  /** Checks a raw string value, converted to the parameter's type first (query strings are text). */
  check(raw: string): SchemaProblem[];
}

export interface SpecOperation {
  operation: ApiOperation;
  operationId: string;
  method: string;
  pathTemplate: string;
  parameters: SpecParameter[];
  /** Request body media types and whether a body is required (create only). */
  requestBody?: { required: boolean; mediaTypes: string[]; check(body: unknown): SchemaProblem[] };
  /** Documented statuses, e.g. ['201', '400', ...]. */
  statuses: string[];
  /** Checks a response: status documented, media type declared, body valid, declared headers present. */
  checkResponse(status: number, contentType: string | undefined, body: unknown): string[];
  /** Response headers the spec declares for a status (lower case). */
  responseHeaders(status: number): string[];
  match(pathname: string): Record<string, string> | undefined;
}

export interface AtlasSpec {
  operations: SpecOperation[];
  /** Resource versions (dates) the spec's media types name, oldest first. */
  versions: string[];
  /** Validates an ApiError body. */
  checkApiError(body: unknown): SchemaProblem[];
  /** The operation for a method and path; `pathMatched` when the path exists with other methods. */
  route(
    method: string,
    pathname: string,
  ): { operation: SpecOperation; params: Record<string, string> } | { pathMatched: boolean };
}

let loaded: Promise<AtlasSpec> | undefined;

/** Loads and compiles the spec once per process. */
export function loadAtlasSpec(): Promise<AtlasSpec> {
  loaded ??= compile();
  return loaded;
}

function newAjv(): Ajv {
  // OpenAPI 3.0 schemas are not strict JSON Schema (example, x-*, nullable): strict off; ajv knows nullable.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormatsModule.default(ajv);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  return ajv;
}

/** Atlas rejects unknown fields rather than ignoring them: request objects are closed. */
function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    copy[key] = key === 'enum' || key === 'example' ? value : closeObjects(value);
  }
  if (copy.properties !== undefined && copy.additionalProperties === undefined)
    copy.additionalProperties = false;
  return copy;
}

function problems(errors: ErrorObject[] | null | undefined, root: string): SchemaProblem[] {
  if (!errors) return [];
  const specific = errors.filter(
    (e) => e.keyword !== 'oneOf' || !errors.some((o) => o !== e && o.instancePath === e.instancePath),
  );
  return specific.map((e) => {
    const path = [root, ...e.instancePath.split('/').slice(1)].filter(Boolean);
    if (e.keyword === 'additionalProperties') path.push(String(e.params.additionalProperty));
    if (e.keyword === 'required') path.push(String(e.params.missingProperty));
    const field = path.join('.');
    const allowed = e.keyword === 'enum' ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
    return {
      field,
      keyword: e.keyword,
      message: `${field || 'body'} ${e.message ?? 'is invalid'}${allowed}`,
    };
  });
}

/** Converts a query or path string to the type its schema declares; leaves it as text when it does not parse. */
function typed(raw: string, schema: OpenAPIV3.SchemaObject): unknown {
  if ((schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(raw))
    return Number(raw);
  if (schema.type === 'boolean' && (raw === 'true' || raw === 'false')) return raw === 'true';
  return raw;
}

function templateMatcher(template: string): (pathname: string) => Record<string, string> | undefined {
  const names: string[] = [];
  const source = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const regex = new RegExp(`^${source}/?$`);
  return (pathname) => {
    const m = regex.exec(pathname);
    if (!m) return undefined;
    return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(m[i + 1] ?? '')]));
  };
}

async function compile(): Promise<AtlasSpec> {
  const api = (await SwaggerParser.dereference(SPEC_PATH)) as OpenAPIV3.Document;
  const ajv = newAjv();
  const operations: SpecOperation[] = [];
  const versions = new Set<string>();
  const apiErrorSchema = api.components?.schemas?.ApiError as OpenAPIV3.SchemaObject | undefined;
  if (!apiErrorSchema) throw new Error(`${SPEC_PATH} has no ApiError schema`);
  const apiError = ajv.compile(closeObjects(apiErrorSchema) as object);

  for (const [pathTemplate, item] of Object.entries(api.paths)) {
    if (!item) continue;
    const match = templateMatcher(pathTemplate);
    for (const method of ['get', 'post', 'delete', 'put', 'patch'] as const) {
      const op = item[method];
      if (!op?.operationId) continue;
      const operation = OPERATION_IDS[op.operationId];
      if (!operation) continue;
      const parameters = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => {
        const param = p as OpenAPIV3.ParameterObject;
        const schema = (param.schema ?? {}) as OpenAPIV3.SchemaObject;
        const validate = ajv.compile(schema as object);
        return {
          name: param.name,
          in: param.in as 'path' | 'query',
          required: param.required === true,
          check: (raw: string) => (validate(typed(raw, schema)) ? [] : problems(validate.errors, param.name)),
        };
      });

      let requestBody: SpecOperation['requestBody'];
      const body = op.requestBody as OpenAPIV3.RequestBodyObject | undefined;
      if (body) {
        const mediaTypes = Object.keys(body.content);
        const schemas = new Map<string, ValidateFunction>();
        for (const [type, media] of Object.entries(body.content)) {
          if (media.schema) schemas.set(type, ajv.compile(closeObjects(media.schema) as object));
        }
        const [first] = schemas.values();
        requestBody = {
          required: body.required === true,
          mediaTypes,
          check: (value) => (!first || first(value) ? [] : problems(first.errors, '')),
        };
      }

      const responses = new Map<
        string,
        { media: Map<string, ValidateFunction | undefined>; headers: string[] }
      >();
      for (const [status, r] of Object.entries(op.responses)) {
        const response = r as OpenAPIV3.ResponseObject;
        const media = new Map<string, ValidateFunction | undefined>();
        for (const [type, content] of Object.entries(response.content ?? {})) {
          const version = ATLAS_MEDIA_TYPE.exec(type)?.[1];
          if (version) versions.add(version);
          media.set(type, content.schema ? ajv.compile(closeObjects(content.schema) as object) : undefined);
        }
        responses.set(status, {
          media,
          headers: Object.keys(response.headers ?? {}).map((h) => h.toLowerCase()),
        });
      }

      operations.push({
        operation,
        operationId: op.operationId,
        method: method.toUpperCase(),
        pathTemplate,
        parameters,
        ...(requestBody && { requestBody }),
        statuses: [...responses.keys()],
        responseHeaders: (status) => responses.get(String(status))?.headers ?? [],
        checkResponse(status, contentType, value) {
          const documented = responses.get(String(status));
          if (!documented) return [`status ${status} is not documented for ${op.operationId}`];
          if (documented.media.size === 0) return [];
          // A bodiless answer (204) declares its media type without a schema.
          if (value === undefined && [...documented.media.values()].every((v) => v === undefined)) return [];
          const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
          if (!documented.media.has(type)) {
            return [
              `content type ${type || '(none)'} is not one of ${[...documented.media.keys()].join(', ')}`,
            ];
          }
          const validate = documented.media.get(type);
          if (!validate || validate(value)) return [];
          return problems(validate.errors, '').map((p) => p.message);
        },
        match,
      });
    }
  }
  for (const id of Object.keys(OPERATION_IDS)) {
    if (!operations.some((o) => o.operationId === id)) throw new Error(`${SPEC_PATH} has no operation ${id}`);
  }
  return {
    operations,
    versions: [...versions].sort(),
    checkApiError: (value) => (apiError(value) ? [] : problems(apiError.errors, '')),
    route(method, pathname) {
      let pathMatched = false;
      for (const operation of operations) {
        const params = operation.match(pathname);
        if (!params) continue;
        if (operation.method === method) return { operation, params };
        pathMatched = true;
      }
      return { pathMatched };
    },
  };
}
