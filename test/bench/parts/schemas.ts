/**
 * The floor plus zod/mini and the schemas the functions build at cold start, from their own
 * modules: the environment (parsed, as each handler does), the request, and the Atlas client's
 * answers (its module brings the client's code along: HTTP, Digest, OAuth).
 */
import * as atlas from '#atlas/client.ts';
import { parseRequest } from '#messages/request.ts';
import { readEnvironment } from '#runtime/environment.ts';
import { handler as floor } from '../floor-handler.ts';

const env = readEnvironment('provision');

export const handler = async () => [await floor(), env, parseRequest, atlas];
