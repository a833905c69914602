import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCRIPTS } from './harness.js';

/** vip_key of marathon/lib.sh: the host:port DC/OS gives a VIP label value. */
function vipKey(vip: string, framework?: string): string {
  return execFileSync('bash', ['-c', '. "$1"; FRAMEWORK=${2:-marathon}; vip_key "$3"', 'vip', join(SCRIPTS, 'lib.sh'), framework ?? '', vip], { encoding: 'utf8' }).trim();
}

describe('the VIP naming rule (dcos-net mesos_state:domain_frag/1)', () => {
  it.each([
    ['/primary.pgrepl:5432', 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432'],
    ['primary.pgrepl:5432', 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432'],
    ['/pgrepl:5432', 'pgrepl.marathon.l4lb.thisdcos.directory:5432'],
    ['/db/pgrepl:5432', 'dbpgrepl.marathon.l4lb.thisdcos.directory:5432'],
    ['/db/prod/main.pg:6432', 'dbprodmain.pg.marathon.l4lb.thisdcos.directory:6432'],
    ['/My_DB.Primary:5432', 'my-db.primary.marathon.l4lb.thisdcos.directory:5432'],
    ['/a..b:5432', 'a.b.marathon.l4lb.thisdcos.directory:5432'],
    ['/-edge-.x:1', 'edge.x.marathon.l4lb.thisdcos.directory:1'],
    ['10.0.0.5:5432', '10.0.0.5:5432'],
    [`/${'x'.repeat(70)}:5432`, `${'x'.repeat(63)}.marathon.l4lb.thisdcos.directory:5432`],
  ])('%s -> %s', (vip, key) => {
    expect(vipKey(vip)).toBe(key);
  });

  it('the framework name is PGREPL_VIP_FRAMEWORK’s (Marathon on Marathon)', () => {
    expect(vipKey('/primary.pgrepl:5432', 'marathon-user')).toBe('primary.pgrepl.marathon-user.l4lb.thisdcos.directory:5432');
  });
});
