import { describe, expect, it } from 'vitest';
import type { Step } from '../../src/plan/decide.js';
import { afterRewind, type RewindOutcome } from '../../src/plan/rewind.js';

const FALLBACK: Step[] = [{ do: 'move-aside' }, { do: 'clone' }];
const base: RewindOutcome = { stage: 'done', lines: ['pg_rewind: Done!'], upstreamTimeline: 2, ourTimeline: 1 };
const after = (o: Partial<RewindOutcome>, stoppedBy?: string, fallback = FALLBACK) => afterRewind({ ...base, ...o }, stoppedBy, fallback, 'pg2:5432');

describe('what a rewind outcome means (plan/rewind.ts)', () => {
  it('pg_rewind finished: start', () => {
    expect(after({})).toEqual({ next: 'start', why: 'pg_rewind finished' });
    // "same timeline" is fine when it is the truth (a standby that had not diverged).
    expect(after({ lines: ['pg_rewind: source and target cluster are on the same timeline'], upstreamTimeline: 1 }).next).toBe('start');
  });

  it('a stop signal ends the start, whatever the programs made of it: never moved aside', () => {
    for (const o of [
      { stage: 'crash recovery' as const, exitCode: 1, lines: ['FATAL:  terminating connection due to administrator command'] },
      { stage: 'pg_rewind' as const, signal: 'SIGTERM', lines: [] },
      { stage: 'pg_rewind' as const, exitCode: 1, lines: ['pg_rewind: error: could not find previous WAL record'] },
      { stage: 'done' as const, lines: [] },
    ]) {
      expect(after(o, 'SIGTERM')).toEqual({ next: 'stop', signal: 'SIGTERM' });
    }
  });

  it('a program killed by a signal nobody sent us: refused, nothing moved aside', () => {
    const a = after({ stage: 'pg_rewind', signal: 'SIGKILL', lines: [] });
    expect(a).toEqual({ next: 'refuse', message: 'pg_rewind was killed by SIGKILL (not by a stop of this node: the OOM killer?); nothing was moved aside: start the node again to try again' });
  });

  it('a network error: refused (the next start tries again), nothing moved aside', () => {
    for (const line of [
      'pg_rewind: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused',
      'pg_rewind: error: could not fetch remote file "base/1/1259": server closed the connection unexpectedly',
      'pg_rewind: error: could not connect to server: timeout expired',
    ]) {
      const a = after({ stage: 'pg_rewind', exitCode: 1, lines: ['pg_rewind: connected to server', line] });
      expect(a.next).toBe('refuse');
      expect('message' in a && a.message).toBe(`pg_rewind lost the upstream pg2:5432 (${line}); nothing was moved aside: start the node again once the upstream answers`);
    }
  });

  it('pg_rewind says it cannot: the plan\'s fallback (move aside, clone)', () => {
    const a = after({ stage: 'pg_rewind', exitCode: 1, lines: ['pg_rewind: servers diverged at WAL location 0/3000000 on timeline 1', 'pg_rewind: error: could not find previous WAL record at 0/2FFFFD8'] });
    expect(a).toEqual({
      next: 'fall back',
      why: 'pg_rewind failed (exit 1): pg_rewind: error: could not find previous WAL record at 0/2FFFFD8: moving this node\'s data aside (kept) and cloning instead',
      steps: FALLBACK,
    });
    expect(after({ stage: 'crash recovery', exitCode: 1, lines: ['PANIC:  could not locate a valid checkpoint record'] }).next).toBe('fall back');
  });

  it('the upstream\'s control file behind its timeline ("same timeline" while it is newer): fallback', () => {
    const a = after({ lines: ['pg_rewind: source and target cluster are on the same timeline', 'pg_rewind: no rewind required'] });
    expect(a.next).toBe('fall back');
    expect('why' in a && a.why).toMatch(/its control file is behind/);
  });

  it('no fallback possible (pg_basebackup too old to clone): refused, nothing moved aside', () => {
    const a = after({ stage: 'pg_rewind', exitCode: 1, lines: ['pg_rewind: error: could not find common ancestor'] }, undefined, []);
    expect(a.next).toBe('refuse');
  });
});
