/**
 * The two packages proven from their tarballs, as users install them (./consumers.ts): a CDK app
 * as `cdk init` makes one and a plain CommonJS app synth with the construct, and their functions'
 * code is this repository's bundles byte for byte; a plain JavaScript service sends a valid
 * request to ElasticMQ (started here) with the requester package alone; the JSON Schemas and the
 * AsyncAPI document resolve from the package. Needs the npm registry, or npm's cache.
 * The figures (sizes, synth times) are printed for the README and the changelog.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { publint } from 'publint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS, PROJECT_ROOT } from '#infra/constructs/function.ts';
import { buildAll } from '#infra/package/build.ts';
import { FUNCTIONS_OUT } from '#infra/package/functions.ts';
import { REQUESTER_OUT } from '#infra/package/requester.ts';
import { ProvisionRequestSchema } from '#messages/request.ts';
import { type Emulator, startElasticMq } from '#test/local/emulators.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '#test/local/environment.ts';
import { functionsStale, libraryStale } from '#test/support/functions-built.ts';
import {
  createCommonJsApp,
  createService,
  createTypeScriptApp,
  type Packed,
  pack,
  synth,
} from './consumers.ts';

const run = promisify(execFile);
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = () => addFormats(new Ajv2020({ strict: true }));
const MINUTES = 60_000;
type Json = Record<string, unknown>;

let dir: string;
let main: Packed;
let requester: Packed;
let tsApp: string;
let cjsApp: string;
let service: string;
let elasticMq: Emulator;
const seconds: Record<string, number> = {};

/** Runs a step and keeps its time in seconds. */
async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await step();
  seconds[what] = (performance.now() - started) / 1000;
  return result;
}

/** Bytes of every file under `path`. */
async function sizeOf(path: string): Promise<number> {
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .reduce((total, e) => total + statSync(join(e.parentPath, e.name)).size, 0);
}

/** A synthesized app's template, and each function's asset folder in its cloud assembly. */
function synthesized(app: string, stack: string) {
  const out = join(app, 'cdk.out');
  const template = JSON.parse(readFileSync(join(out, `${stack}.template.json`), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: Json }>;
  };
  const assets = JSON.parse(readFileSync(join(out, `${stack}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>;
  };
  const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
  const codeDirs = functions.map((f) => {
    const key = (f.Properties.Code as { S3Key: string }).S3Key.replace(/\.zip$/, '');
    const asset = assets.files[key];
    if (!asset) throw new Error(`no asset ${key} in ${stack}.assets.json`);
    return join(out, asset.source.path);
  });
  return { template, codeDirs };
}

/** The copies of a package under an app's node_modules, by `npm ls`. */
async function copiesOf(app: string, name: string): Promise<string[]> {
  const { stdout } = await run('npm', ['ls', name, '--all', '--parseable'], { cwd: app });
  return stdout.split('\n').filter((line) => line.endsWith(`node_modules/${name}`));
}

beforeAll(async () => {
  if (functionsStale() || libraryStale()) await buildAll();
  dir = await mkdtemp(join(tmpdir(), 'package-consumers-'));
  main = await pack('.', dir);
  requester = await pack(REQUESTER_OUT, dir);
  [tsApp, cjsApp, service, elasticMq] = await Promise.all([
    timed('install: cdk init app', () => createTypeScriptApp(dir, main.file)),
    timed('install: CommonJS app', () => createCommonJsApp(dir, main.file)),
    timed('install: service', () => createService(dir, requester.file)),
    startElasticMq(),
  ]);
}, 15 * MINUTES);

afterAll(async () => {
  await elasticMq?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  console.log(
    `package figures:\n${Object.entries(seconds)
      .map(([what, s]) => `  ${what}: ${s.toFixed(1)} s`)
      .join('\n')}`,
  );
});

describe('the construct package', () => {
  it('holds the built library, the bundles, the contracts and the changelog, and no sources or tests', () => {
    const paths = main.files.map((f) => f.path).sort();
    expect(paths).toEqual(
      [
        'README.md',
        'package.json',
        'dist/CHANGELOG.md',
        ...['index.mjs', 'index.cjs', 'index.d.mts', 'index.d.cts'].map((f) => `dist/lib/${f}`),
        ...Object.values(FUNCTIONS).flatMap((f) =>
          ['index.mjs', 'index.mjs.map'].map((file) => `${FUNCTIONS_OUT}/${f.bundle}/${file}`),
        ),
        'events/asyncapi.yaml',
        'events/schema/request.v1.json',
        'events/schema/status-changed.v1.json',
      ].sort(),
    );
    console.log(
      `construct package: ${main.file.split('/').at(-1)} ${main.size} B packed, ${main.unpackedSize} B unpacked, ${paths.length} files:\n` +
        main.files.map((f) => `  ${f.path} ${f.size} B`).join('\n'),
    );
  });

  it('is publishable: a name and version a registry takes, CDK as peers, no dependencies, not private', () => {
    const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.name).toMatch(/^[a-z0-9][a-z0-9._-]{0,213}$/);
    expect(manifest.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['aws-cdk-lib', 'constructs']);
    expect(manifest.devDependencies).toHaveProperty('aws-cdk-lib');
    expect(manifest.dependencies).toBeUndefined();
  });

  it(
    'passes publint and arethetypeswrong (types under node10, node16 CJS and ESM, bundlers)',
    async () => {
      for (const packed of [main, requester]) {
        const { messages } = await publint({
          pack: { tarball: new Uint8Array(readFileSync(packed.file)).buffer },
          level: 'warning',
        });
        expect(messages, packed.file).toEqual([]);
        // The AsyncAPI document is YAML, not a module: nothing for TypeScript to resolve.
        await run(join(PROJECT_ROOT, 'node_modules/.bin/attw'), [
          packed.file,
          '--format',
          'ascii',
          '--exclude-entrypoints',
          'asyncapi.yaml',
        ]);
      }
    },
    2 * MINUTES,
  );
});

describe.each([
  ['an app as `cdk init app --language typescript` makes it', () => tsApp, 'TsAppStack'],
  ['a plain CommonJS app', () => cjsApp, 'CjsAppStack'],
])('%s, with the package from its tarball', (name, app, stack) => {
  let codeDirs: string[];
  let template: ReturnType<typeof synthesized>['template'];

  beforeAll(async () => {
    // WHEN it synthesizes, as its cdk.json says
    seconds[`synth: ${name}`] = await synth(app());
    ({ template, codeDirs } = synthesized(app(), stack));
  }, 5 * MINUTES);

  it("deploys this repository's bundles, byte for byte", async () => {
    const shipped = await Promise.all(
      Object.values(FUNCTIONS).map((f) => readFile(join(PROJECT_ROOT, FUNCTIONS_OUT, f.bundle, 'index.mjs'))),
    );
    const deployed = await Promise.all(codeDirs.map((d) => readFile(join(d, 'index.mjs'))));
    expect(deployed.map((code) => code.toString('base64')).sort()).toEqual(
      shipped.map((code) => code.toString('base64')).sort(),
    );
    for (const d of codeDirs) expect((await readdir(d)).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    console.log(
      `${name}: function code ${deployed.map((c) => `${c.byteLength} B`).join(', ')}` +
        ` (this repository: ${shipped.map((c) => `${c.byteLength} B`).join(', ')})`,
    );
  });

  it("grants the app's role sending requests, and routes status events to its queue", () => {
    const statements = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy')
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Json[] }).Statement);
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: expect.arrayContaining(['sqs:SendMessage']), Effect: 'Allow' }),
    );
    const rules = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Events::Rule');
    expect(rules.map((r) => r.Properties.EventPattern)).toContainEqual(
      expect.objectContaining({ detail: { outcome: ['PROVISIONED', 'REJECTED'] } }),
    );
  });

  it('has one copy of aws-cdk-lib, and nothing the package brought but its peers', async () => {
    expect(await copiesOf(app(), 'aws-cdk-lib')).toHaveLength(1);
    expect(existsSync(join(app(), 'node_modules/atlas-backup-private-endpoints/node_modules'))).toBe(false);
    // The functions' own dependencies travel inside their bundles.
    for (const bundled of ['@aws-sdk/client-sqs', '@middy/core', '@aws-lambda-powertools/logger', 'zod'])
      expect(existsSync(join(app(), 'node_modules', bundled)), bundled).toBe(false);
  });
});

describe('the construct package under stricter compiler options', () => {
  it(
    'has no type error of its own, with skipLibCheck off',
    async () => {
      // aws-cdk-lib's own declarations do not pass these options: only errors elsewhere count.
      const strict = ['--strict', '--exactOptionalPropertyTypes', '--noUncheckedIndexedAccess'];
      const more = [
        '--noPropertyAccessFromIndexSignature',
        '--noImplicitOverride',
        '--skipLibCheck',
        'false',
      ];
      const result = await run(
        join(tsApp, 'node_modules/.bin/tsc'),
        ['-p', 'tsconfig.json', '--noEmit', '--pretty', 'false', ...strict, ...more],
        { cwd: tsApp, maxBuffer: 16 << 20 },
      ).catch((error: { stdout: string }) => error);
      const errors = result.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
      expect(errors.filter((line) => !line.startsWith('node_modules/aws-cdk-lib/'))).toEqual([]);
    },
    2 * MINUTES,
  );
});

describe('the requester package, in a plain JavaScript service', () => {
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    sqs = new SQSClient({
      endpoint: elasticMq.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    ({ QueueUrl: queueUrl = '' } = await sqs.send(new CreateQueueCommand({ QueueName: 'requests' })));
  });

  /** Runs a service file with node, pointed at ElasticMQ; resolves with what it printed. */
  const send = async (file: string, requestId: string) => {
    const { stdout } = await run(process.execPath, [file, requestId], {
      cwd: service,
      env: {
        PATH: process.env.PATH,
        REQUEST_QUEUE_URL: queueUrl,
        AWS_ENDPOINT_URL_SQS: elasticMq.endpoint,
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      },
    });
    return JSON.parse(stdout) as { requestId: string; messageId: string };
  };

  it('depends on the SQS and EventBridge clients alone', async () => {
    const manifest = JSON.parse(
      await readFile(
        join(service, 'node_modules/atlas-backup-private-endpoints-requester/package.json'),
        'utf8',
      ),
    );
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@aws-sdk/client-eventbridge',
      '@aws-sdk/client-sqs',
    ]);
    expect(manifest.peerDependencies).toBeUndefined();
    const installed = await sizeOf(join(service, 'node_modules'));
    console.log(
      `requester package: ${requester.size} B packed; the service's node_modules with it installed: ${(installed / 1e6).toFixed(1)} MB`,
    );
    expect(installed).toBeLessThan(20e6);
  });

  it(
    'sends valid requests from ESM and CommonJS on plain Node, and from bundles made by esbuild',
    async () => {
      const esbuild = join(PROJECT_ROOT, 'node_modules/.bin/esbuild');
      // esbuild's defaults for Node (CommonJS out), and ESM out with the main fields the AWS SDK asks for.
      await run(esbuild, ['send.mjs', '--bundle', '--platform=node', '--outfile=out/send.js'], {
        cwd: service,
      });
      await run(
        esbuild,
        [
          'send.mjs',
          '--bundle',
          '--platform=node',
          '--format=esm',
          '--main-fields=module,main',
          '--outfile=out/send.mjs',
        ],
        { cwd: service },
      );
      const sent = [
        await send('send.mjs', 'svc-esm'),
        await send('send.cjs', 'svc-cjs'),
        await send('out/send.js', 'svc-bundle-cjs'),
        await send('out/send.mjs', 'svc-bundle-esm'),
      ];
      expect(sent.map((s) => s.requestId)).toEqual([
        'svc-esm',
        'svc-cjs',
        'svc-bundle-cjs',
        'svc-bundle-esm',
      ]);

      const schema = JSON.parse(
        await readFile(
          createRequire(join(service, 'package.json')).resolve(
            'atlas-backup-private-endpoints-requester/schema/request.v1.json',
          ),
          'utf8',
        ),
      );
      const validate = ajv().compile(schema);
      const bodies: unknown[] = [];
      while (bodies.length < sent.length) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        if (Messages.length === 0) break;
        bodies.push(...Messages.map((m) => JSON.parse(m.Body ?? 'null')));
      }
      expect(bodies).toHaveLength(sent.length);
      for (const body of bodies) {
        expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
        expect(ProvisionRequestSchema.safeParse(body).success).toBe(true);
      }
    },
    2 * MINUTES,
  );
});

describe('the contracts, resolved from the construct package', () => {
  const resolve = (specifier: string) => createRequire(join(cjsApp, 'package.json')).resolve(specifier);

  it('has both JSON Schemas', () => {
    for (const name of ['request.v1.json', 'status-changed.v1.json']) {
      const file = resolve(`atlas-backup-private-endpoints/schema/${name}`);
      expect(file).toContain(join(cjsApp, 'node_modules'));
      expect(() => ajv().compile(JSON.parse(readFileSync(file, 'utf8')))).not.toThrow();
    }
  });

  it('has the AsyncAPI document, valid with every reference resolved', async () => {
    const file = resolve('atlas-backup-private-endpoints/asyncapi.yaml');
    const { document, diagnostics } = await new Parser().parse(readFileSync(file, 'utf8'), { source: file });
    expect(diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error)).toEqual([]);
    expect(document?.channels().all().length).toBeGreaterThan(0);
  });
});
