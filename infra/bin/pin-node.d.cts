// Types of pin-node.cjs, for the tests that pin against a stand-in registry.
import type { Build } from './launch.cjs';

export type Pins = { about?: string; node: string; builds: Record<string, Build> };

/** The pins for Node `version`, per platform already pinned under root, from the registry npm uses. */
export declare function pins(options: { version: string; root?: string; env?: NodeJS.ProcessEnv }): Pins;

/** Writes the pins for `version` to root's infra/bin/node-pins.json and .nvmrc; returns them. */
export declare function pin(options: { version: string; root?: string; env?: NodeJS.ProcessEnv }): Pins;
