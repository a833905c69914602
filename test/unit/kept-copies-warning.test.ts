import { describe, expect, it } from 'vitest';
import { KEPT_SHARE_WARN, keptCopiesWarning } from '../../src/cli/status.js';

describe('pgrepl status: kept copies that crowd the volume', () => {
  it('says nothing up to the share, warns above it with the numbers and what to do', () => {
    expect(KEPT_SHARE_WARN).toBe(0.25);
    expect(keptCopiesWarning(0, 1000)).toBeNull();
    expect(keptCopiesWarning(250, 1000)).toBeNull();
    expect(keptCopiesWarning(400, 1000)).toBe(
      'kept copies take 40% of the volume PGDATA is on (400 kB of 1000 kB): once you have checked them, remove the ones you no longer need, before the live data runs out of space',
    );
  });

  it('an unknown volume size never warns', () => {
    expect(keptCopiesWarning(400, 0)).toBeNull();
  });
});
