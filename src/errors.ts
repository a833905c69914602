/**
 * A mistake the operator can fix: bad input, a data directory we must not touch, an unreachable
 * upstream. It is reported as exactly one log line (the message names the variable or path and
 * what to do) and ends the process with a non-zero code. Anything else that is thrown is a bug
 * or an unexpected failure and is reported with its stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}
