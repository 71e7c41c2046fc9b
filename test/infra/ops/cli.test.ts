import { describe, expect, it, vi } from 'vitest';
import {
  CommandError,
  EXIT_FAILURE,
  EXIT_USAGE,
  integerFlag,
  numberFlag,
  parseCommand,
  UsageError,
} from '#infra/ops/cli.ts';
import { main as replay } from '#infra/ops/replay.ts';
import { main as send } from '#infra/ops/send.ts';
import { main as status } from '#infra/ops/status.ts';
import { runCommand } from '#test/support/command-line.ts';

describe('runMain', () => {
  it('exits 2 for a usage error, printing the message and then the usage', async () => {
    const { code, stderr } = await runCommand(async () => {
      throw new UsageError('--rate must be a whole number', { usage: 'usage: cmd --rate N' });
    });

    expect(code).toBe(EXIT_USAGE);
    expect(stderr).toBe('error: --rate must be a whole number\n\nusage: cmd --rate N\n');
  });

  it("prints the command's usage after a usage error that carries none, when given", async () => {
    const { stderr } = await runCommand(
      async () => {
        throw new UsageError('--x is wrong');
      },
      { usage: 'usage: cmd' },
    );

    expect(stderr).toBe('error: --x is wrong\n\nusage: cmd\n');
  });

  it('exits 1 for a command error, on one line with no stack', async () => {
    const { code, stderr } = await runCommand(async () => {
      throw new CommandError('a task is already running');
    });

    expect(code).toBe(EXIT_FAILURE);
    expect(stderr).toBe('error: a task is already running\n');
  });

  it('exits 1 for an unexpected failure, with its stack', async () => {
    const { code, stderr } = await runCommand(async () => {
      throw new Error('boom');
    });

    expect(code).toBe(EXIT_FAILURE);
    expect(stderr).toMatch(/^error: Error: boom\n\s+at /);
  });

  it('exits with the code main resolves with, 0 when it resolves with nothing', async () => {
    expect((await runCommand(async () => 3)).code).toBe(3);
    expect((await runCommand(async () => undefined)).code).toBe(0);
  });
});

describe('flag values', () => {
  it('fails naming the flag, the bounds and the value given', () => {
    expect(() => integerFlag('rate', '0', 1, 500)).toThrow(
      new UsageError('--rate must be a whole number from 1 to 500 (given "0")'),
    );
    expect(() => integerFlag('port', '1.5', 0)).toThrow('--port must be a whole number of 0 or more');
    expect(() => integerFlag('port', '', 0)).toThrow(UsageError);
    expect(() => numberFlag('p', '1.5', 0, 1)).toThrow('--p must be a number from 0 to 1 (given "1.5")');
    expect(() => numberFlag('p', ' ', 0, 1)).toThrow(UsageError);
  });

  it('answers the value when it is within bounds, and undefined when the flag is absent', () => {
    expect(integerFlag('rate', '500', 1, 500)).toBe(500);
    expect(numberFlag('p', '0.25', 0, 1)).toBe(0.25);
    expect(integerFlag('rate', undefined, 1, 500)).toBeUndefined();
  });

  it('prints the usage for --help and answers undefined', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);

    expect(parseCommand({ x: { type: 'string' } }, ['-h'], 'usage: cmd')).toBeUndefined();
    expect(log).toHaveBeenCalledWith('usage: cmd');
  });
});

describe.each([
  { name: 'send', main: send, badValue: ['--group', 'nothex', '--region', 'US_EAST_1', '--queue-url', 'q'] },
  { name: 'replay', main: replay, badValue: ['--dlq-arn', 'a', '--queue-arn', 'b', '--rate', '0'] },
  { name: 'status', main: status, badValue: ['--table', 't', '--group', 'xyz'] },
])('npm run $name', ({ main, badValue }) => {
  it('exits 2 on an unknown flag, naming it, with the usage', async () => {
    const { code, stderr } = await runCommand(() => main(['--no-such-flag']));

    expect(code).toBe(EXIT_USAGE);
    expect(stderr).toMatch(/^error: Unknown option '--no-such-flag'.*\n\nusage: npm run /s);
  });

  it('exits 2 on a bad value, naming the flag', async () => {
    const { code, stderr } = await runCommand(() => main(badValue));

    expect(code).toBe(EXIT_USAGE);
    expect(stderr).toMatch(/^error: .*--(group|rate)\b/);
  });
});
