import { describe, expect, it } from 'vitest';
import { compareLsn, lsnBytes, lsnDistance, maxLsn } from '../../src/ha/lsn.js';
import {
  demoteDeadline, demoteMarginMs, earlierRunGraceMs, earliestLeaseExpiry, HA_TIMING_DEFAULTS, retryDelayMs, timingProblem, type HaTiming,
} from '../../src/ha/timing.js';

describe('timing rule: LOOP_WAIT + 2 × RETRY_TIMEOUT < TTL', () => {
  it('the defaults are safe', () => {
    expect(timingProblem(HA_TIMING_DEFAULTS)).toBeUndefined();
    expect(HA_TIMING_DEFAULTS.ttl).toBe(10);
  });

  it('refuses a loop and retry that do not fit twice in the lease, naming the variables', () => {
    expect(timingProblem({ ttl: 10, loopWait: 4, retryTimeout: 3 })).toBe(
      'PGREPL_TTL=10, PGREPL_LOOP_WAIT=4, PGREPL_RETRY_TIMEOUT=3: LOOP_WAIT + 2 × RETRY_TIMEOUT = 10 must be below TTL, or a leader may demote on one slow etcd call; raise PGREPL_TTL or lower the other two (defaults: 10, 2, 3)',
    );
    expect(timingProblem({ ttl: 20, loopWait: 10, retryTimeout: 5 })).toMatch(/= 20 must be below TTL/);
    expect(timingProblem({ ttl: 6, loopWait: 1, retryTimeout: 2 })).toBeUndefined();
  });

  it('refuses a TTL that is not whole seconds, and non-positive loop or retry', () => {
    expect(timingProblem({ ttl: 9.5, loopWait: 1, retryTimeout: 1 })).toMatch(/^PGREPL_TTL=9.5 must be a whole number of seconds/);
    expect(timingProblem({ ttl: 0, loopWait: 1, retryTimeout: 1 })).toMatch(/^PGREPL_TTL=0/);
    expect(timingProblem({ ttl: 10, loopWait: 0, retryTimeout: 1 })).toMatch(/^PGREPL_LOOP_WAIT=0 must be a positive/);
    expect(timingProblem({ ttl: 10, loopWait: 1, retryTimeout: 0 })).toMatch(/^PGREPL_RETRY_TIMEOUT=0 must be a positive/);
    expect(timingProblem({ ttl: 10, loopWait: Number.NaN, retryTimeout: 1 })).toMatch(/^PGREPL_LOOP_WAIT=NaN/);
  });
});

describe('the demote deadline: last renewal sent + TTL − margin', () => {
  it('is TTL − RETRY_TIMEOUT after the renewal was sent', () => {
    expect(demoteMarginMs(HA_TIMING_DEFAULTS)).toBe(3000);
    expect(demoteDeadline(50_000, HA_TIMING_DEFAULTS)).toBe(57_000);
    expect(demoteDeadline(50_000, { ttl: 6, loopWait: 1, retryTimeout: 2 })).toBe(54_000);
  });

  it('never two writable: for every valid timing the leader has stopped writes at least one RETRY_TIMEOUT before etcd can expire its lease', () => {
    for (let ttl = 1; ttl <= 30; ttl++) {
      for (const loopWait of [0.5, 1, 2, 5, 10]) {
        for (const retryTimeout of [0.5, 1, 2, 3, 5, 10]) {
          const t: HaTiming = { ttl, loopWait, retryTimeout };
          if (timingProblem(t) !== undefined) continue;
          const sent = 1_000_000;
          // etcd received the keepalive at or after it was sent: its expiry is no earlier than this.
          const expiry = earliestLeaseExpiry(sent, t);
          expect(demoteDeadline(sent, t)).toBeLessThan(expiry);
          expect(expiry - demoteDeadline(sent, t)).toBeGreaterThanOrEqual(retryTimeout * 1000);
        }
      }
    }
  });

  it('two full renewal attempts are SENT before the deadline (an etcd hiccup is retried through, not demoted for)', () => {
    for (const t of [HA_TIMING_DEFAULTS, { ttl: 6, loopWait: 1, retryTimeout: 2 }, { ttl: 30, loopWait: 10, retryTimeout: 9 }]) {
      expect(timingProblem(t)).toBeUndefined();
      const sent = 0;
      const second = sent + t.loopWait * 1000; // the next renewal
      const third = second + t.retryTimeout * 1000; // it hung for a whole RETRY_TIMEOUT: sent again at once
      expect(third).toBeLessThan(demoteDeadline(sent, t));
    }
  });

  it('a failed call is retried soon, never in a tight loop, never later than LOOP_WAIT', () => {
    expect(retryDelayMs(HA_TIMING_DEFAULTS)).toBe(500);
    expect(retryDelayMs({ ttl: 2, loopWait: 0.2, retryTimeout: 0.5 })).toBe(200);
  });

  it("an earlier run's member key is waited for twice the TTL", () => {
    expect(earlierRunGraceMs(HA_TIMING_DEFAULTS)).toBe(20_000);
  });
});

describe('WAL positions', () => {
  it('parses both halves and compares as 64-bit numbers', () => {
    expect(lsnBytes('0/5000060')).toBe(0x5000060n);
    expect(lsnBytes('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(compareLsn('0/5000000', '0/5000060')).toBe(-1);
    expect(compareLsn('0/A', '0/a')).toBe(0);
    expect(lsnDistance('0/5000000', '0/5000060')).toBe(0x60n);
    expect(lsnDistance('FFFFFFFF/FFFFFFFF', '0/0')).toBe(-((1n << 64n) - 1n));
    expect(maxLsn(undefined, '0/3', '1/0', '0/FFFFFFFF')).toBe('1/0');
    expect(maxLsn()).toBeUndefined();
  });

  it('rejects what is not a position', () => {
    expect(() => lsnBytes('5000060')).toThrow('not a WAL position: "5000060" (expected e.g. 0/5000060)');
    expect(() => lsnBytes('0/123456789')).toThrow();
  });
});
