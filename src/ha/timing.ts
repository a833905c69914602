/**
 * The HA agent's timing rule, pure. Nothing here reads a clock: times are milliseconds on the
 * agent's own monotonic clock, passed in.
 *
 * The leader's key lives on its lease; etcd deletes both TTL seconds after the last keepalive it
 * RECEIVED, and only then can another node create the key and promote. The leader cannot know
 * when etcd received a keepalive, only when it SENT it, and a keepalive is received after it is
 * sent. So, on its own clock, whatever its etcd client reports:
 *
 *   the leader stops accepting writes by   last renewal sent + TTL − margin,   margin = RETRY_TIMEOUT
 *
 * which is at least one RETRY_TIMEOUT before etcd can expire the lease (the margin also absorbs
 * the fast stop itself: sessions are killed at once, new connections refused, and a local clock
 * that runs slow by up to margin/TTL). A lease granted for the key counts as a renewal sent when
 * the grant was sent. etcd only ever lengthens a lease (a new etcd leader extends them all; a TTL
 * below its minimum is raised), which moves the expiry later, never earlier.
 *
 * And, so that an etcd hiccup does not demote a healthy leader:
 *
 *   LOOP_WAIT + 2 × RETRY_TIMEOUT < TTL
 *
 * after a renewal sent at s, the next one is sent by s + LOOP_WAIT; if it hangs, it is abandoned
 * at s + LOOP_WAIT + RETRY_TIMEOUT and sent again at once, strictly before the deadline
 * s + TTL − RETRY_TIMEOUT: two full attempts fit before any demotion. An etcd election (1–3 s,
 * failed calls answered at once thanks to `hasleader`) is retried through, not demoted for.
 */

export interface HaTiming {
  /** PGREPL_TTL: the leader lease, whole seconds (etcd leases are). */
  ttl: number;
  /** PGREPL_LOOP_WAIT: seconds between two loops when nothing happens. */
  loopWait: number;
  /** PGREPL_RETRY_TIMEOUT: seconds any one etcd call may take; also the demotion margin. */
  retryTimeout: number;
}

/**
 * Failover on a dead leader takes about TTL − LOOP_WAIT/2 (the lease runs out; the watch wakes
 * the others at once) plus a promotion: ~10 s. 2 + 2 × 3 = 8 < 10, and the leader demotes at
 * renewal sent + 7 s, 3 s before etcd can let anyone else in.
 */
export const HA_TIMING_DEFAULTS: HaTiming = { ttl: 10, loopWait: 2, retryTimeout: 3 };

/** One line naming the variables and what to do, or undefined when the timing is safe. */
export function timingProblem(t: HaTiming): string | undefined {
  const now = `PGREPL_TTL=${t.ttl}, PGREPL_LOOP_WAIT=${t.loopWait}, PGREPL_RETRY_TIMEOUT=${t.retryTimeout}`;
  if (!Number.isInteger(t.ttl) || t.ttl < 1) return `PGREPL_TTL=${t.ttl} must be a whole number of seconds, at least 1 (etcd leases are whole seconds)`;
  if (!(t.loopWait > 0)) return `PGREPL_LOOP_WAIT=${t.loopWait} must be a positive number of seconds`;
  if (!(t.retryTimeout > 0)) return `PGREPL_RETRY_TIMEOUT=${t.retryTimeout} must be a positive number of seconds (it is also the leader's safety margin before its lease can expire)`;
  if (!(t.loopWait + 2 * t.retryTimeout < t.ttl)) {
    return `${now}: LOOP_WAIT + 2 × RETRY_TIMEOUT = ${t.loopWait + 2 * t.retryTimeout} must be below TTL, or a leader may demote on one slow etcd call; raise PGREPL_TTL or lower the other two (defaults: ${HA_TIMING_DEFAULTS.ttl}, ${HA_TIMING_DEFAULTS.loopWait}, ${HA_TIMING_DEFAULTS.retryTimeout})`;
  }
  return undefined;
}

/** How long before etcd could expire the lease the leader has stopped writes: one RETRY_TIMEOUT. */
export const demoteMarginMs = (t: HaTiming): number => t.retryTimeout * 1000;

/** When the leader must have stopped accepting writes, given when its last confirmed renewal was sent. */
export const demoteDeadline = (lastRenewalSentAt: number, t: HaTiming): number => lastRenewalSentAt + t.ttl * 1000 - demoteMarginMs(t);

/** The earliest instant etcd can delete the leader key, on the leader's clock: etcd received the renewal after it was sent. */
export const earliestLeaseExpiry = (lastRenewalSentAt: number, t: HaTiming): number => lastRenewalSentAt + t.ttl * 1000;

/** The pause before the next loop after a failed etcd call: at once, but not in a tight loop when etcd refuses instantly. */
export const retryDelayMs = (t: HaTiming): number => Math.min(t.loopWait * 1000, 500);

/**
 * How long after it started an agent treats a live member key of its own name (another agent
 * instance) as possibly its own earlier run's: that run is dead, so its lease ends within TTL of
 * this start; twice that covers a lease etcd extended on an election of its own.
 */
export const earlierRunGraceMs = (t: HaTiming): number => 2 * t.ttl * 1000;
