/**
 * The published contracts (events/schema/, events/asyncapi.yaml) are what the code's zod schemas
 * generate, every sample in events/ is judged by them as the code judges it, and the AsyncAPI
 * document passes the AsyncAPI parser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { StatusChangedDetailSchema } from '#events/schema.ts';
import { STATUS_CHANGED_DETAIL_TYPE } from '#events/status-event.ts';
import { REQUESTED_DETAIL_TYPE } from '#messages/front-door.ts';
import { ProvisionRequestSchema } from '#messages/request.ts';
import { buildContracts, CONTRACT_FILES, EVENTS, ROOT } from './published.ts';

const addFormats = addFormatsModule as unknown as <A extends Ajv | Ajv2020>(ajv: A) => A;
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const ajv = addFormats(new Ajv2020({ allErrors: true, strict: true }));
const requestSchema = ajv.compile(JSON.parse(read(CONTRACT_FILES.request)));
const statusSchema = ajv.compile(JSON.parse(read(CONTRACT_FILES.statusChanged)));

interface Verdict {
  sample: string;
  valid: boolean;
}

/** A body that is not JSON is invalid before any schema sees it, as parseRequest judges it. */
const judgeBody = (sample: string, body: string): Verdict => {
  let request: unknown;
  try {
    request = JSON.parse(body);
  } catch {
    return { sample, valid: false };
  }
  return judgeRequest(sample, request);
};

/** The JSON Schema's verdict on a request, checked against the code's own. */
const judgeRequest = (sample: string, request: unknown): Verdict => {
  const valid = requestSchema(request);
  expect(valid, `${sample}: JSON Schema and zod disagree (${ajv.errorsText(requestSchema.errors)})`).toBe(
    ProvisionRequestSchema.safeParse(request).success,
  );
  return { sample, valid };
};

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  );

describe('published contracts', () => {
  it('are what `npm run contracts` generates from the zod schemas now', () => {
    for (const [path, content] of Object.entries(buildContracts())) {
      expect(read(path), `${path} is stale: run npm run contracts`).toBe(content);
    }
  });

  it('judge every sample in events/ as the code does', () => {
    // Every file in events/ is a sample of a contract, a generated contract, or named here.
    const notSamples: Record<string, string> = {
      'events/scheduled.json': "the Scheduler event that runs the status checker: AWS's shape, not ours",
      'events/demo/simulator.json': "the Atlas simulator's faults for the demo",
    };
    const verdicts: Verdict[] = [];
    for (const path of files(EVENTS).map((f) => relative(ROOT, f))) {
      if (Object.values(CONTRACT_FILES).includes(path as never) || path in notSamples) continue;
      const text = read(path);
      if (path.endsWith('.jsonl')) {
        text
          .split('\n')
          .filter(Boolean)
          .forEach((line, i) => {
            verdicts.push(judgeRequest(`${path}:${i + 1}`, JSON.parse(line)));
          });
        continue;
      }
      const json = JSON.parse(text);
      if (Array.isArray(json.requests)) {
        // `npm start -- --requesters`: each requester's request bodies.
        json.requests.forEach((request: { body: unknown }, i: number) => {
          verdicts.push(judgeRequest(`${path} request ${i}`, request.body));
        });
      } else if (Array.isArray(json.Records)) {
        json.Records.forEach((record: { body: string }, i: number) => {
          verdicts.push(judgeBody(`${path} record ${i}`, record.body));
        });
      } else if (Array.isArray(json)) {
        // PutEvents entries, as `aws events put-events --entries file://...` takes them.
        json.forEach((entry: { DetailType: string; Detail: string }, i: number) => {
          expect(entry.DetailType).toBe(REQUESTED_DETAIL_TYPE);
          verdicts.push(judgeRequest(`${path} entry ${i}`, JSON.parse(entry.Detail)));
        });
      } else if (json['detail-type'] === REQUESTED_DETAIL_TYPE) {
        verdicts.push(judgeRequest(path, json.detail));
      } else if (json['detail-type'] === STATUS_CHANGED_DETAIL_TYPE) {
        const valid = statusSchema(json.detail);
        expect(valid, ajv.errorsText(statusSchema.errors)).toBe(
          StatusChangedDetailSchema.safeParse(json.detail).success,
        );
        verdicts.push({ sample: path, valid });
      } else if ('requestId' in json) {
        verdicts.push(judgeRequest(path, json));
      } else {
        throw new Error(`${path} is no known sample: validate it here or name it in notSamples`);
      }
    }

    const invalid = verdicts.filter((v) => !v.valid).map((v) => v.sample);
    expect(invalid.sort()).toEqual(
      [
        'events/demo/requests.jsonl:7', // the typo `regionname`
        'events/sqs-batch-invalid.json record 1', // the typo `regionname`
        'events/sqs-batch-invalid.json record 2', // not JSON
        'events/sqs-batch-invalid.json record 3', // an unknown action, project, provider
      ].sort(),
    );
    expect(verdicts.length).toBeGreaterThan(invalid.length + 10);
  });

  it('accept a request without the defaulted fields and reject one with an unknown field', () => {
    const request = {
      requestId: 'r1',
      groupId: 'a'.repeat(24),
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
    };
    expect(requestSchema(request)).toBe(true);
    expect(requestSchema({ ...request, regionname: 'US_EAST_1' })).toBe(false);
  });

  describe('AsyncAPI document', () => {
    let diagnostics: Awaited<ReturnType<Parser['parse']>>['diagnostics'];
    let document: Awaited<ReturnType<Parser['parse']>>['document'];

    beforeAll(async () => {
      ({ document, diagnostics } = await new Parser().parse(read(CONTRACT_FILES.asyncapi)));
    });

    it('is valid AsyncAPI 3 with no error or warning', () => {
      const problems = diagnostics
        .filter((d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning)
        .map((d) => `${d.code} ${d.path.join('.')}: ${d.message}`);
      expect(problems).toEqual([]);
      expect(document?.version()).toMatch(/^3\./);
    });

    it('describes the request queue, the front door and the status events, each with an example', () => {
      const channels = document?.channels().all() ?? [];
      expect(channels.map((c) => c.id()).sort()).toEqual(['requestEvents', 'requestQueue', 'statusEvents']);
      for (const channel of channels) {
        for (const message of channel.messages().all()) {
          expect(message.examples().all().length, message.id()).toBeGreaterThan(0);
        }
      }
      // The parser does not check examples against payloads: AsyncAPI schemas are draft-07 based.
      const draft7 = addFormats(new Ajv({ allErrors: true, strict: false }));
      for (const message of document?.messages().all() ?? []) {
        const validate = draft7.compile(message.payload()?.json() as object);
        for (const example of message.examples().all()) {
          expect(validate(example.payload()), `${message.id()}: ${draft7.errorsText(validate.errors)}`).toBe(
            true,
          );
        }
      }
      const operations = document?.operations().all() ?? [];
      expect(operations.map((o) => `${o.action()} ${o.channels().all()[0]?.id()}`).sort()).toEqual([
        'receive requestEvents',
        'receive requestQueue',
        'send statusEvents',
      ]);
    });
  });
});
