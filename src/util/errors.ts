/**
 * Errors a user can fix (bad config, bad data file, missing checkpoint) are GtaError: the CLI prints
 * their one-line message and exits with code 2, without a stack trace. Anything else is a bug and
 * exits 1 with the stack.
 */
export class GtaError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'GtaError';
    this.exitCode = exitCode;
  }
}

/** `file:line: message`, the form editors and terminals turn into links. */
export function atLine(file: string, line: number | undefined, message: string): GtaError {
  return new GtaError(line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`);
}

/** A write that failed for lack of space becomes a one-line error naming the file; others pass through. */
export function writeError(file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new GtaError(`${file}: no space left on device (${code})`, 1);
  return e as Error;
}
