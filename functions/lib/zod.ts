/**
 * zod's tree-shakable API (`zod/mini`), for every schema the functions bundle: a bundle then
 * carries only the checks it uses, not the whole library. Import it as a namespace
 * (`import * as z from '#lib/zod.ts'`): a namespace re-exported as a value would carry all of it.
 * The classic API registers its English messages by itself; zod/mini does not, so they are
 * registered here, once, and every reason reads as before ("Invalid input: expected string, ...").
 */
import { en } from 'zod/locales';
import { config } from 'zod/mini';

config(en());

export * from 'zod/mini';
