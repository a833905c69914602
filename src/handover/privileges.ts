/**
 * Becoming the postgres user. postgres refuses to run as root, and everything the entrypoint does
 * after preparing directories (initdb, the temporary server, init scripts) runs as postgres, as in
 * the official image where the script re-executes itself through gosu. Node can drop privileges
 * in-process, so we do it once, in the documented order: supplementary groups, then gid, then uid
 * (after setuid we could no longer change groups).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export const POSTGRES_OS_USER = 'postgres';

export function parsePasswd(text: string, name: string): PasswdEntry | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' };
    }
  }
  return undefined;
}

export function lookupUser(name = POSTGRES_OS_USER): PasswdEntry {
  const entry = parsePasswd(readFileSync('/etc/passwd', 'utf8'), name);
  if (!entry) {
    throw new UserError(`there is no "${name}" user in /etc/passwd: create it (e.g. useradd --system ${name}) or run as that user`);
  }
  return entry;
}

export function dropPrivileges(user: PasswdEntry): void {
  const { initgroups } = process as unknown as { initgroups?: (user: string, extraGroup: number) => void };
  if (initgroups) initgroups.call(process, user.name, user.gid);
  else process.setgroups?.([user.gid]);
  process.setgid?.(user.gid);
  process.setuid?.(user.uid);
  process.env.HOME = user.home;
  process.env.USER = user.name;
  process.env.LOGNAME = user.name;
}

export const runningAsRoot = (): boolean => process.getuid?.() === 0;
