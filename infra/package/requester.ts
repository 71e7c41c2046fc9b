/**
 * The requester package, `atlas-backup-private-endpoints-requester`, written to dist/requester:
 * what a service needs to send a request, and nothing of the provisioner. Its own package, since
 * installing the construct's package would install aws-cdk-lib and constructs too (npm installs
 * peer dependencies). Its dependencies are the SQS and EventBridge clients alone; the request's
 * checks (zod) are bundled in, and its JSON Schema ships beside them.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_NAME, PROJECT_ROOT } from '#infra/constructs/function.ts';
import { buildRequester } from './library.ts';

export const REQUESTER_NAME = `${PACKAGE_NAME}-requester`;
export const REQUESTER_OUT = 'dist/requester';
/** The SDK clients it calls; their versions are this repository's, as a caret range. */
const CLIENTS = ['@aws-sdk/client-eventbridge', '@aws-sdk/client-sqs'] as const;

interface Manifest {
  version: string;
  description?: string;
  license?: string;
  engines?: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** The requester's package.json, from the main one's version, license and pinned client versions. */
export function requesterManifest(main: Manifest): Record<string, unknown> {
  const entry = (kind: 'mts' | 'cts', js: 'mjs' | 'cjs') => ({
    types: `./index.d.${kind}`,
    default: `./index.${js}`,
  });
  return {
    name: REQUESTER_NAME,
    version: main.version,
    description:
      'Sends requests to the MongoDB Atlas backup private endpoint provisioner (SQS or EventBridge)',
    license: main.license,
    type: 'module',
    engines: main.engines,
    main: './index.cjs',
    module: './index.mjs',
    types: './index.d.cts',
    exports: {
      '.': { import: entry('mts', 'mjs'), require: entry('cts', 'cjs') },
      './schema/request.v1.json': './schema/request.v1.json',
      './package.json': './package.json',
    },
    files: ['index.*', 'schema', 'CHANGELOG.md'],
    dependencies: Object.fromEntries(
      CLIENTS.map((name) => {
        const version = main.devDependencies[name];
        if (!version) throw new Error(`package.json has no ${name}`);
        return [name, `^${version}`];
      }),
    ),
  };
}

const README = `# ${REQUESTER_NAME}

Sends provisioning requests to a deployment of \`${PACKAGE_NAME}\`: validated by the parser the
provisioner uses, then sent to its request queue (\`sendRequest\`) or put on its EventBridge front
door (\`putRequestEvent\`). ESM and CommonJS, with type declarations; Node 22 or newer.

\`\`\`js
import { sendRequest } from '${REQUESTER_NAME}';

const { requestId } = await sendRequest(
  { groupId: '5f1a2b3c4d5e6f7a8b9c0d1e', cloudProvider: 'AWS', regionName: 'EU_WEST_1' },
  { queueUrl: process.env.REQUEST_QUEUE_URL },
);
\`\`\`

The request's JSON Schema: \`${REQUESTER_NAME}/schema/request.v1.json\`. See the README of
\`${PACKAGE_NAME}\` ("Sending requests", "Status events").
`;

/** Builds the requester package into dist/requester. */
export async function buildRequesterPackage(): Promise<string> {
  const out = join(PROJECT_ROOT, REQUESTER_OUT);
  await buildRequester(REQUESTER_OUT);
  const main = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as Manifest;
  await writeFile(join(out, 'package.json'), `${JSON.stringify(requesterManifest(main), null, 2)}\n`);
  await writeFile(join(out, 'README.md'), README);
  await mkdir(join(out, 'schema'), { recursive: true });
  await copyFile(join(PROJECT_ROOT, 'events/schema/request.v1.json'), join(out, 'schema/request.v1.json'));
  await copyFile(join(PROJECT_ROOT, 'infra/package/CHANGELOG.md'), join(out, 'CHANGELOG.md'));
  return out;
}
