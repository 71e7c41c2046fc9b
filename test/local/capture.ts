/**
 * Diverts what the in-process functions print (Powertools writes its JSON logs straight to
 * process.stdout) so a live view or a test report stays readable. The logs are kept, not lost.
 */
export interface CapturedOutput {
  /** Writes to the real stdout, past the capture. */
  write(text: string): void;
  restore(): void;
}

export function captureProcessOutput(sink: (text: string) => void): CapturedOutput {
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  const divert = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = divert;
  process.stderr.write = divert;
  return {
    write: (text) => {
      stdout.call(process.stdout, text);
    },
    restore() {
      process.stdout.write = stdout;
      process.stderr.write = stderr;
    },
  };
}
