/**
 * The packages as their users get them: packed with `npm pack`, installed from the tarball with
 * `npm install` into apps made in a temporary folder, with aws-cdk-lib and constructs from the
 * registry (npm's cache first: `npm ci` of this repository put the same versions there).
 *
 * - a TypeScript CDK app exactly as `cdk init app --language typescript` makes it (this
 *   repository's aws-cdk CLI, so the template is the one of the version pinned here), compiled
 *   and run as its cdk.json says;
 * - a plain CommonJS CDK app (`require`, no compiler);
 * - a plain JavaScript service with the requester package only.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '#infra/constructs/function.ts';

const run = promisify(execFile);
/** This repository's own CDK CLI: the consumer apps synth as `npx cdk synth` would. */
export const CDK_CLI = join(PROJECT_ROOT, 'node_modules/aws-cdk/bin/cdk');
/** Nothing leaves the machine but registry requests: no notices, no version check, no telemetry. */
const QUIET_CDK = { CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true' };

const manifest = async (dir: string) => JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
const pinned = async (name: string): Promise<string> => {
  const version = (await manifest(PROJECT_ROOT)).devDependencies[name];
  if (!version) throw new Error(`package.json pins no ${name}`);
  return version;
};

export interface Packed {
  file: string;
  /** Bytes of the .tgz. */
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

/** `npm pack` of a package folder (dist/ is built already: no prepack) into `destination`. */
export async function pack(folder: string, destination: string): Promise<Packed> {
  const { stdout } = await run(
    'npm',
    ['pack', `./${folder}`, '--ignore-scripts', '--json', '--pack-destination', destination],
    { cwd: PROJECT_ROOT },
  );
  const [packed] = JSON.parse(stdout) as Array<Omit<Packed, 'file'> & { filename: string }>;
  if (!packed) throw new Error(`npm pack ${folder} printed nothing`);
  return { ...packed, file: join(destination, packed.filename) };
}

/** `npm install` in `dir`, from the cache where it can. */
export async function npmInstall(dir: string, specs: string[] = []): Promise<void> {
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...specs], {
    cwd: dir,
    maxBuffer: 16 << 20,
  });
}

/** `cdk synth` in an app folder, as its cdk.json says; resolves with the seconds it took. */
export async function synth(dir: string): Promise<number> {
  const started = performance.now();
  await run(process.execPath, [CDK_CLI, 'synth', '--quiet', '--no-notices'], {
    cwd: dir,
    env: { ...process.env, ...QUIET_CDK },
    maxBuffer: 16 << 20,
  });
  return (performance.now() - started) / 1000;
}

/** The stack a user writes: the construct, a requester role granted sending, a status-event target. */
const USES_THE_CONSTRUCT = `    const endpoints = new AtlasBackupPrivateEndpoints(this, 'BackupEndpoints', { maxConcurrency: 3 });
    const orders = new Role(this, 'OrdersService', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    endpoints.grantSendRequests(orders);
    endpoints.onStatusChanged('OrdersStatus', {
      target: new SqsQueue(new Queue(this, 'OrdersInbox', { enforceSSL: true })),
      outcomes: ['PROVISIONED', 'REJECTED'],
    });`;

/**
 * `cdk init app --language typescript` in `parent/ts-app`, its stack using the construct. The
 * template's package.json stays as it is but for its test runner (jest, @swc/*) and the CLI
 * (aws-cdk: this repository's, the same version); the package is added from its tarball.
 */
export async function createTypeScriptApp(parent: string, tarball: string): Promise<string> {
  const dir = join(parent, 'ts-app');
  await run('mkdir', ['-p', dir]);
  await run(process.execPath, [CDK_CLI, 'init', 'app', '--language', 'typescript', '--generate-only'], {
    cwd: dir,
    env: { ...process.env, ...QUIET_CDK },
  });
  const pkg = await manifest(dir);
  for (const name of ['jest', '@swc/core', '@swc/jest', 'aws-cdk']) delete pkg.devDependencies[name];
  pkg.dependencies = {
    ...pkg.dependencies,
    'aws-cdk-lib': await pinned('aws-cdk-lib'),
    constructs: await pinned('constructs'),
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await writeFile(
    join(dir, 'lib/ts-app-stack.ts'),
    `import * as cdk from 'aws-cdk-lib/core';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AtlasBackupPrivateEndpoints } from 'atlas-backup-private-endpoints';

export class TsAppStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);
${USES_THE_CONSTRUCT}
  }
}
`,
  );
  await npmInstall(dir, [tarball]);
  return dir;
}

/** A CommonJS app in plain JavaScript: app.js, a cdk.json running it, the package and its peers. */
export async function createCommonJsApp(parent: string, tarball: string): Promise<string> {
  const dir = join(parent, 'cjs-app');
  await run('mkdir', ['-p', dir]);
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'cjs-app', version: '1.0.0', private: true, license: 'UNLICENSED' }, null, 2),
  );
  await writeFile(join(dir, 'cdk.json'), JSON.stringify({ app: 'node app.js' }, null, 2));
  await writeFile(
    join(dir, 'app.js'),
    `'use strict';
const { App, Stack } = require('aws-cdk-lib');
const { SqsQueue } = require('aws-cdk-lib/aws-events-targets');
const { Role, ServicePrincipal } = require('aws-cdk-lib/aws-iam');
const { Queue } = require('aws-cdk-lib/aws-sqs');
const { AtlasBackupPrivateEndpoints } = require('atlas-backup-private-endpoints/cdk');

class CjsAppStack extends Stack {
  constructor(scope, id, props) {
    super(scope, id, props);
${USES_THE_CONSTRUCT}
  }
}

const app = new App();
new CjsAppStack(app, 'CjsAppStack');
`,
  );
  await npmInstall(dir, [
    tarball,
    `aws-cdk-lib@${await pinned('aws-cdk-lib')}`,
    `constructs@${await pinned('constructs')}`,
  ]);
  return dir;
}

/** The service's code, ESM and CommonJS: sends one request to REQUEST_QUEUE_URL and prints what it sent. */
const SERVICE = (load: string) => `${load}
sendRequest(
  { groupId: '5f1a2b3c4d5e6f7a8b9c0d1e', cloudProvider: 'AWS', regionName: 'EU_WEST_1', requestId: process.argv[2] },
  { queueUrl: process.env.REQUEST_QUEUE_URL },
).then(
  (sent) => console.log(JSON.stringify(sent)),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
`;

/** A plain JavaScript service with only the requester package installed. */
export async function createService(parent: string, tarball: string): Promise<string> {
  const dir = join(parent, 'service');
  await run('mkdir', ['-p', dir]);
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'service', version: '1.0.0', private: true, license: 'UNLICENSED' }, null, 2),
  );
  await writeFile(
    join(dir, 'send.mjs'),
    SERVICE("import { sendRequest } from 'atlas-backup-private-endpoints-requester';"),
  );
  await writeFile(
    join(dir, 'send.cjs'),
    SERVICE("const { sendRequest } = require('atlas-backup-private-endpoints-requester');"),
  );
  await npmInstall(dir, [tarball]);
  return dir;
}
