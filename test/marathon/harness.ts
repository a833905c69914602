/**
 * Runs the marathon/ scripts (bash, curl, jq) against a fresh MarathonStandIn per test, and checks
 * after every test what must hold for every run: no request body invalid against
 * AppDefinition.json, no rule violation the test did not ask for, and no secret in the scripts'
 * output or on any command line they ran (curl and jq run through shims that log their argv).
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { describeErrors } from './schemas.js';
import { MarathonStandIn } from './stand-in.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SCRIPTS = join(ROOT, 'marathon');
export const PASSWORD = 'pw-Sup3r-s3cret-9f2c';
export const TOKEN = 'tok-R3pl-s3cret-71ab';
export const IMAGE = 'registry.example.com/pgrepl:17';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the command lines of every curl and jq the script ran */
  argv: string;
}

export interface Harness {
  readonly m: MarathonStandIn;
  /** runs marathon/SCRIPT.sh ARGS with the secrets, the image and fast polling set; env entries override (undefined unsets) */
  run(script: string, args: string[], env?: Record<string, string | undefined>): Promise<RunResult>;
  /** the stand-in may see requests refused by rules in this test (an error path under test) */
  allowRuleViolations(): void;
}

/** Registers the hooks; the returned object is valid inside tests. */
export function useHarness(): Harness {
  let dir = '';
  let m: MarathonStandIn | undefined;
  let allowRules = false;
  const runs: RunResult[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgrepl-marathon-'));
    for (const tool of ['curl', 'jq']) {
      const real = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      const shim = join(dir, tool);
      writeFileSync(shim, `#!/bin/bash\nprintf '%s ' ${tool} "$@" >>"$PGREPL_TEST_ARGV_LOG"\necho >>"$PGREPL_TEST_ARGV_LOG"\nexec ${real} "$@"\n`);
      chmodSync(shim, 0o755);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    m = new MarathonStandIn();
    allowRules = false;
    runs.length = 0;
    await m.start();
  });

  afterEach(async () => {
    const s = m!;
    await s.stop();
    const invalid = s.schemaViolations().map((r) => `${r.method} ${r.path}: ${describeErrors(r.schemaErrors).join('; ')}`);
    expect(invalid, 'request bodies invalid against AppDefinition.json').toEqual([]);
    if (!allowRules) expect(s.ruleViolations().map((r) => `${r.method} ${r.path}: ${JSON.stringify(r.ruleErrors)}`), 'Marathon rule violations').toEqual([]);
    for (const r of runs) {
      for (const secret of [PASSWORD, TOKEN]) {
        expect(r.stdout + r.stderr, 'a secret in the output').not.toContain(secret);
        expect(r.argv, 'a secret on a command line').not.toContain(secret);
      }
    }
  });

  return {
    get m() {
      if (!m) throw new Error('the stand-in runs inside tests only');
      return m;
    },
    allowRuleViolations() {
      allowRules = true;
    },
    async run(script, args, env = {}) {
      const argvLog = join(dir, `argv-${runs.length}.log`);
      writeFileSync(argvLog, '');
      const base: Record<string, string | undefined> = {
        PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: dir,
        LANG: 'C.UTF-8',
        PGREPL_TEST_ARGV_LOG: argvLog,
        PGREPL_IMAGE: IMAGE,
        POSTGRES_PASSWORD: PASSWORD,
        PGREPL_TOKEN: TOKEN,
        PGREPL_DEPLOY_POLL: '0.05',
        PGREPL_DEPLOY_TIMEOUT: '20',
      };
      const merged = { ...base, ...env };
      const childEnv = Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
      const child = spawn('bash', [join(SCRIPTS, `${script}.sh`), ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((ok) => child.on('close', (c) => ok(c)));
      const result = { code, stdout, stderr, argv: readFileSync(argvLog, 'utf8') };
      runs.push(result);
      return result;
    },
  };
}

/** A pgrepl app as primary.sh makes it, for seeding the stand-in. */
/** (Without `peers`, as primary.sh made it before nodes listed PGREPL_PEERS.) */
export function nodeApp(
  id: string, role: 'PRIMARY' | 'STANDBY', vip: string, extra: { upstream?: [string, string]; size?: number; avoid?: string; peers?: string } = {},
): Record<string, unknown> {
  const name = id.replace(/^\//, '').replace(/[^a-z0-9_]/g, '_');
  return {
    id,
    instances: 1,
    cpus: 1,
    mem: 1024,
    container: {
      type: 'DOCKER',
      docker: { image: IMAGE },
      volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: extra.size ?? 100 } }],
      portMappings: [{ name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: vip } }],
    },
    networks: [{ mode: 'container/bridge' }],
    env: {
      PGREPL_ROLE: role,
      PGDATA: '/mnt/mesos/sandbox/pgdata',
      PGREPL_NODE_NAME: name,
      ...(extra.peers ? { PGREPL_PEERS: extra.peers } : {}),
      PGREPL_TOKEN: TOKEN,
      POSTGRES_PASSWORD: PASSWORD,
      ...(extra.upstream ? { PGREPL_MASTER_IP: extra.upstream[0], PGREPL_MASTER_PORT: extra.upstream[1] } : {}),
    },
    labels: { MARATHON_SINGLE_INSTANCE_APP: 'true' },
    constraints: extra.avoid ? [['hostname', 'UNLIKE', extra.avoid]] : [],
    healthChecks: [{ protocol: 'COMMAND', command: { value: 'pgrepl health' }, gracePeriodSeconds: 900, intervalSeconds: 30, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 }],
    taskKillGracePeriodSeconds: 120,
    upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 },
  };
}
