/**
 * What a rewind's outcome means, as a pure function: the rewind step (steps/rewind.ts) reports
 * what happened (which program ended how, what it printed, the timelines involved) and this
 * decides what the start does next. Unit-tested in test/unit/rewind-outcome.test.ts.
 *
 * The rule is Patroni's lesson the other way round: data is only moved aside when a rewind is
 * *diagnosed* impossible. A stop signal ends the start (the next one picks up: crash recovery
 * and pg_rewind can both run again). A program killed by a signal nobody sent us (the OOM
 * killer), or an upstream that stopped answering, ends the start too, with one line saying so;
 * moving a good cluster aside and copying the whole upstream is never the answer to a blip.
 */
import type { Step } from './decide.js';

export interface RewindOutcome {
  /** The step that ended the attempt, or 'done' when pg_rewind finished. */
  stage: 'crash recovery' | 'pg_rewind' | 'done';
  exitCode?: number | undefined;
  /** The signal that ended the program, if one did. */
  signal?: string | undefined;
  /** What the program printed (stderr lines). */
  lines: string[];
  /** The upstream's timeline as observed before the rewind, and this node's. */
  upstreamTimeline: number | undefined;
  ourTimeline: number | undefined;
}

export type AfterRewind =
  | { next: 'start'; why: string }
  | { next: 'fall back'; why: string; steps: Step[] }
  | { next: 'stop'; signal: string }
  | { next: 'refuse'; message: string };

/** libpq's and pg_rewind's words for a connection that failed or broke off. */
const NETWORK = [
  /connection to server .* failed/i, /could not connect to server/i, /server closed the connection unexpectedly/i,
  /could not receive data from server/i, /could not send data to server/i, /no connection to the server/i,
  /timeout expired/i, /could not translate host name/i, /unexpected EOF/i, /connection not open/i,
];

const last = (lines: string[]) => lines.filter((l) => /error|fatal|failed/i.test(l)).slice(-1)[0] ?? lines.slice(-1)[0] ?? '(no output)';

/**
 * @param stoppedBy the stop signal this start received while the rewind ran, if any
 * @param fallback  what the plan does when the rewind is impossible (move aside, clone), or [] when it cannot clone
 * @param upstream  `host:port`, for messages
 */
export function afterRewind(o: RewindOutcome, stoppedBy: string | undefined, fallback: Step[], upstream: string): AfterRewind {
  if (stoppedBy) return { next: 'stop', signal: stoppedBy };
  const what = o.stage === 'crash recovery' ? 'crash recovery (single-user mode) before pg_rewind' : 'pg_rewind';
  if (o.stage !== 'done' && o.signal) {
    return {
      next: 'refuse',
      message: `${what} was killed by ${o.signal} (not by a stop of this node: the OOM killer?); nothing was moved aside: start the node again to try again`,
    };
  }
  if (o.stage === 'pg_rewind' && o.lines.some((l) => NETWORK.some((re) => re.test(l)))) {
    return {
      next: 'refuse',
      message: `pg_rewind lost the upstream ${upstream} (${last(o.lines)}); nothing was moved aside: start the node again once the upstream answers`,
    };
  }
  let impossible: string | undefined;
  if (o.stage === 'done') {
    // pg_rewind reads the source's timeline from its control file, which a promoted server
    // updates at its next checkpoint: "same timeline" while the upstream is on a newer one means
    // it compared the wrong history and changed nothing.
    const sameTimeline = o.lines.some((l) => l.includes('same timeline'));
    if (!sameTimeline || o.upstreamTimeline === o.ourTimeline) return { next: 'start', why: 'pg_rewind finished' };
    impossible = `pg_rewind saw the upstream on this node's timeline ${o.ourTimeline}, but it is on timeline ${o.upstreamTimeline}: its control file is behind (no checkpoint since its promotion)`;
  } else {
    impossible = `${what} failed (exit ${o.exitCode}): ${last(o.lines)}`;
  }
  if (fallback.length === 0) {
    // decide.ts gives no fallback only when pg_basebackup is too old to clone the upstream.
    return { next: 'refuse', message: `${impossible}; cloning instead needs a pg_basebackup as new as the upstream; nothing was moved aside` };
  }
  return { next: 'fall back', why: `${impossible}: moving this node's data aside (kept) and cloning instead`, steps: fallback };
}
