import { describe, expect, it } from 'vitest';
import { main, parseCommandLine } from '#test/local/start.ts';
import { runCommand } from '#test/support/command-line.ts';

describe('npm start command line', () => {
  it('runs the demo by default, giving up after 180 s', () => {
    expect(parseCommandLine([])).toEqual({
      keep: false,
      timeoutSeconds: 180,
      file: undefined,
      atlas: undefined,
    });
  });

  it('exits 2 on an unknown flag, naming it, with the usage', async () => {
    const { code, stderr } = await runCommand(() => main(['--kep']));

    expect(code).toBe(2);
    expect(stderr).toMatch(/^error: Unknown option '--kep'.*\n\nusage: npm start/s);
  });

  it.each([
    [['--timeout', '0'], '--timeout must be a whole number of 1 or more (given "0")'],
    [['--atlas-url', 'not a url'], '--atlas-url must be a URL (given "not a url")'],
    [['--credentials', 'secret.json'], '--credentials goes with --atlas-url'],
    [['--file', 'no-such-requests.jsonl'], 'the requests file no-such-requests.jsonl does not exist'],
  ])('exits 2 on %j, naming what is wrong, before starting anything', async (argv, message) => {
    const { code, stderr } = await runCommand(() => main(argv));

    expect(code).toBe(2);
    expect(stderr).toContain(`error: ${message}`);
  });
});
