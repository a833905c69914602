/** Helpers for tests of the configuration. */
import { expect } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { UserError } from '../../src/errors.js';

/** The one-line message (or lines) loadConfig refuses `env` with, as a UserError; fails if it does not refuse. */
export function configErrorOf(env: Record<string, string>, hostName: string): string {
  try {
    loadConfig(env, hostName);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected loadConfig to fail');
}
