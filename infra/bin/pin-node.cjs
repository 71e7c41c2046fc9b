'use strict';
/**
 * Pins the Node the launcher fetches on an older Node: `npm run pin-node -- <version>` (e.g. 24.23.0).
 *
 * For each platform in infra/bin/node-pins.json it asks the npm registry npm is configured with
 * (`npm view`) for the package's releases and takes <version>, or, where the package has no such
 * release, its newest release of the same major below it (saying why); records the sha512 integrity
 * the registry publishes for that tarball; and writes node-pins.json and .nvmrc. The launcher then
 * accepts those tarballs and no other: review the diff and commit both files.
 *
 * Plain CommonJS with no dependencies, run by the Node at hand (not through the launcher, which
 * could not fetch a Node whose pins are wrong).
 */
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { npmCommand, npmReason } = require('./launch.cjs');

const ROOT = path.resolve(__dirname, '../..');

/** [major, minor, patch] of a plain release version, or undefined (pre-releases are not pinned). */
function parse(version) {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(String(version));
  return match ? match.slice(1).map(Number) : undefined;
}

function compare(a, b) {
  const [x, y] = [parse(a), parse(b)];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** `npm view <args> --json`, parsed; throws with npm's reason. */
function npmView(args, env) {
  const npm = npmCommand(env);
  const view = childProcess.spawnSync(
    npm.command,
    [...npm.args, 'view', ...args, '--json', '--loglevel=error', '--no-update-notifier'],
    { env, encoding: 'utf8' },
  );
  if (view.error) throw new Error(`could not run npm: ${view.error.message}`);
  if (view.status !== 0) throw new Error(`npm view ${args.join(' ')} failed${npmReason(view.stderr)}`);
  return JSON.parse(view.stdout || 'null');
}

/**
 * The pins for Node `version`: per platform already pinned under root, the package's release to fetch
 * (`version`, or its newest of the same major below it, with `why`) and its tarball's integrity.
 */
function pins({ version, root = ROOT, env = process.env }) {
  if (!parse(version)) throw new Error(`not a Node release version: ${version} (e.g. 24.22.3)`);
  const current = JSON.parse(fs.readFileSync(path.join(root, 'infra/bin/node-pins.json'), 'utf8'));
  const builds = {};
  for (const [platform, { package: name }] of Object.entries(current.builds)) {
    const published = [].concat(npmView([name, 'versions'], env) || []);
    const major = parse(version)[0];
    const candidates = published.filter((v) => parse(v) && parse(v)[0] === major && compare(v, version) <= 0);
    const chosen = candidates.sort(compare).pop();
    if (!chosen) {
      throw new Error(
        `${name} has no Node ${major} release up to ${version}: to stop fetching Node for ${platform}, ` +
          'remove it from infra/bin/node-pins.json and run this again',
      );
    }
    const integrity = npmView([`${name}@${chosen}`, 'dist.integrity'], env);
    if (!/^sha512-[A-Za-z0-9+/]{86}==$/.test(String(integrity))) {
      throw new Error(
        `the registry publishes no sha512 integrity for ${name}@${chosen} (it gives ${integrity})`,
      );
    }
    builds[platform] = { package: name, version: chosen, integrity };
    if (chosen !== version) {
      builds[platform].why =
        `${name} has no ${version}: its newest Node ${major} up to ${version} is ${chosen}`;
    }
  }
  return { about: current.about, node: version, builds };
}

/** Writes the pins for `version` to root's node-pins.json and .nvmrc; returns them. */
function pin({ version, root = ROOT, env = process.env }) {
  const pinned = pins({ version, root, env });
  fs.writeFileSync(path.join(root, 'infra/bin/node-pins.json'), `${JSON.stringify(pinned, null, 2)}\n`);
  fs.writeFileSync(path.join(root, '.nvmrc'), `${version}\n`);
  return pinned;
}

if (require.main === module) {
  const [version, ...rest] = process.argv.slice(2);
  if (!version || rest.length > 0) {
    process.stderr.write('usage: npm run pin-node -- <version>   (e.g. 24.23.0)\n');
    process.exit(2);
  }
  try {
    const pinned = pin({ version });
    for (const [platform, build] of Object.entries(pinned.builds)) {
      process.stdout.write(`${platform}: ${build.package}@${build.version} ${build.integrity}\n`);
    }
    process.stdout.write('Wrote infra/bin/node-pins.json and .nvmrc: review the diff and commit both.\n');
  } catch (error) {
    process.stderr.write(`pin-node: ${error.message}\n`);
    process.exit(1);
  }
}

module.exports = { pin, pins };
