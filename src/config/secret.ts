import { inspect } from 'node:util';

/**
 * A value that must never reach a log line: it prints as `[secret]` through JSON.stringify,
 * template strings and util.inspect, so passing a whole configuration object to the logger by
 * mistake leaks nothing. Call reveal() at the one place the value is really needed.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
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
