/** `npm run contracts`: writes the published contracts (see published.ts) and lists them. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildContracts, ROOT } from './published.ts';

for (const [path, content] of Object.entries(buildContracts())) {
  mkdirSync(dirname(join(ROOT, path)), { recursive: true });
  writeFileSync(join(ROOT, path), content);
  console.log(`${path} (${Buffer.byteLength(content)} bytes)`);
}
