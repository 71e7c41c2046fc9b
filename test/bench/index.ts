/**
 * `npm run bench`: the figures the issues ask for, measured on this machine against the
 * in-process Atlas simulator and the local AWS API implementations. Prints, never asserts.
 */
const benches = [
  ['provisioner', () => import('./provision.ts')],
  ['status checker', () => import('./check-status.ts')],
  ['follow-up lag', () => import('./follow-up-lag.ts')],
  ['bundle size and cold init', () => import('./bundle-size.ts')],
] as const;

const only = process.argv.slice(2);
for (const [name, load] of benches) {
  if (only.length > 0 && !only.some((o) => name.includes(o))) continue;
  console.log(`\n== ${name}`);
  const { run } = await load();
  await run();
}
