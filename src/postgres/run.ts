/**
 * Runs PostgreSQL's programs (initdb, pg_ctl, psql, ...). Their output goes straight to our stderr:
 * stdout stays clean, and no pipe is held open by a server that pg_ctl leaves running (a pipe
 * would make us wait for the server to exit). Arguments never carry a secret: passwords travel
 * in 0600 files or in the child's environment, which `ps` does not show.
 */
import { log } from '../log.js';

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Feed this file to the program's stdin. */
  inputFile?: string;
}

/** execa, loaded on first use (a plain restart runs no program before postgres). */
export async function loadExeca(): Promise<typeof import('execa')> {
  return import('execa');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<void> {
  log.debug({ cmd, args }, `running ${cmd}`);
  const { execa } = await loadExeca();
  await execa(cmd, args, {
    stdin: opts.inputFile ? { file: opts.inputFile } : 'ignore',
    stdout: 2,
    stderr: 2,
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
  });
}

/** Runs a program and returns its stdout (for short, data-like output). */
export async function capture(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  log.debug({ cmd, args }, `running ${cmd}`);
  const { execa } = await loadExeca();
  const res = await execa(cmd, args, { stdin: 'ignore', stderr: 2, env: opts.env, cwd: opts.cwd });
  return res.stdout;
}
