import { inspect } from 'node:util';

/**
 * A value that must never reach a log line: it prints as `[secret]` through JSON.stringify,
 * template strings and util.inspect, so passing a whole configuration object to the logger by
 * mistake leaks nothing. Call reveal() at the one place the value is really needed.
 */
export class Secret {
  #value: string;
  /** Set for a secret that was not given: why, for the error reveal() throws. */
  #missing: string | undefined;

  constructor(value: string) {
    this.#value = value;
  }

  /**
   * A secret that was not given (the replication password without PGREPL_TOKEN): reveal() throws
   * `why`, so a path that needs it and was let through fails loudly instead of logging in with a
   * made-up value.
   */
  static missing(why: string): Secret {
    const s = new Secret('');
    s.#missing = why;
    return s;
  }

  reveal(): string {
    if (this.#missing !== undefined) throw new Error(`internal: ${this.#missing}`);
    return this.#value;
  }

  toJSON(): string {
    return '[secret]';
  }

  toString(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return '[secret]';
  }
}
