/**
 * The DC/OS Universe package (universe/packages/P/pgrepl/0): each file against Universe's schemas,
 * and marathon.json.mustache rendered as Cosmos renders it (the config's defaults merged with the
 * options, the package's resource.json as `resource`) into an app Marathon accepts:
 * AppDefinition.json and the rules for resident apps.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mustache from 'mustache';
import { describe, expect, it } from 'vitest';
import { ROOT } from './harness.js';
import { Ajv04, addFormats, describeErrors, validateApp, validateUniverse } from './schemas.js';
import { MarathonStandIn } from './stand-in.js';

const DIR = join(ROOT, 'universe', 'packages', 'P', 'pgrepl', '0');
const read = (f: string): any => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const config = read('config.json');
const resource = read('resource.json');
const template = readFileSync(join(DIR, 'marathon.json.mustache'), 'utf8');

/** Options merged over the config's defaults, checked against config.json (as Cosmos does). */
function options(given: Record<string, Record<string, unknown>> = {}): any {
  const ajv = new Ajv04({ strict: false, allErrors: true, useDefaults: true });
  addFormats(ajv);
  const data: any = { service: {}, pgrepl: {}, postgres: {}, ha: {}, ...structuredClone(given) };
  const validate = ajv.compile(config);
  if (!validate(data)) throw new Error(`options refused by config.json: ${describeErrors(validate.errors ?? []).join('; ')}`);
  return data;
}

function render(opts: any): any {
  const text = Mustache.render(template, { ...opts, resource });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`the rendered marathon.json is not JSON: ${String(err)}\n${text}`);
  }
}

function expectAccepted(app: any): void {
  expect(describeErrors(validateApp(app)), 'AppDefinition.json').toEqual([]);
  expect(new MarathonStandIn().check(app).rules, "Marathon's rules").toEqual([]);
}

describe('Universe package pgrepl', () => {
  it('has the four files of a packagingVersion 4.0 package, in ASCII', () => {
    expect(readdirSync(DIR).sort()).toEqual(['config.json', 'marathon.json.mustache', 'package.json', 'resource.json']);
    for (const f of readdirSync(DIR)) expect(/^[\x00-\x7f]*$/.test(readFileSync(join(DIR, f), 'latin1')), f).toBe(true);
  });

  it('package.json is a 4.0 package', () => {
    expect(describeErrors(validateUniverse('package-schema.json', read('package.json')))).toEqual([]);
    expect(read('package.json')).toMatchObject({ packagingVersion: '4.0', name: 'pgrepl', minDcosReleaseVersion: '1.10' });
  });

  it('config.json is a valid config schema, with no secret by default', () => {
    expect(describeErrors(validateUniverse('config-schema.json', config))).toEqual([]);
    const o = options();
    expect(o.postgres).toEqual({ password: '', password_secret: '' });
    expect([o.pgrepl.replication_token, o.pgrepl.replication_token_secret]).toEqual(['', '']);
  });

  it('resource.json is a v3 resource', () => {
    expect(describeErrors(validateUniverse('v3-resource-schema.json', resource))).toEqual([]);
  });

  it('rendered with the defaults: a resident PRIMARY that Marathon accepts, as primary.sh makes it', () => {
    const app = render(options());
    expectAccepted(app);
    expect(app).toEqual({
      id: 'pgrepl1',
      instances: 1,
      cpus: 1,
      mem: 1024,
      container: {
        type: 'DOCKER',
        docker: { image: resource.assets.container.docker.pgrepl },
        volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 100 } }],
        portMappings: [{ name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/primary.pgrepl:5432' } }],
      },
      networks: [{ mode: 'container/bridge' }],
      env: {
        PGREPL_ROLE: 'PRIMARY', PGDATA: '/mnt/mesos/sandbox/pgdata', PGREPL_NODE_NAME: 'pgrepl1',
        PGREPL_PEERS: 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432',
      },
      secrets: {},
      labels: { MARATHON_SINGLE_INSTANCE_APP: 'true' },
      constraints: [],
      healthChecks: [{ protocol: 'COMMAND', command: { value: 'pgrepl health' }, gracePeriodSeconds: 900, intervalSeconds: 30, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 }],
      taskKillGracePeriodSeconds: 120,
      upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 },
    });
  });

  it('peers empty: no PGREPL_PEERS (no fencing)', () => {
    const app = render(options({ pgrepl: { peers: '' } } as any));
    expectAccepted(app);
    expect(app.env).not.toHaveProperty('PGREPL_PEERS');
  });

  it('a STANDBY with its secrets, an upstream, a placement, an image of its own', () => {
    const app = render(
      options({
        service: { name: '/db/pgrepl2', vip: '/standby.pgrepl:5432', image: 'registry.example.com/pgrepl:15', disk_size: 250, cpus: 2, mem: 2048, avoid_hosts: '10[.]0[.]1[.]11' },
        pgrepl: {
          role: 'STANDBY', node_name: 'db_pgrepl2', upstream_host: 'primary.pgrepl.marathon.l4lb.thisdcos.directory', upstream_port: 5432,
          replication_token: 'tok-with $ & < > = chars', peers: 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432,standby.pgrepl.marathon.l4lb.thisdcos.directory:5432',
        },
        postgres: { password: "p@ss'w&rd" },
      }),
    );
    expectAccepted(app);
    expect(app.env).toEqual({
      PGREPL_ROLE: 'STANDBY',
      PGDATA: '/mnt/mesos/sandbox/pgdata',
      PGREPL_NODE_NAME: 'db_pgrepl2',
      PGREPL_PEERS: 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432,standby.pgrepl.marathon.l4lb.thisdcos.directory:5432',
      PGREPL_MASTER_IP: 'primary.pgrepl.marathon.l4lb.thisdcos.directory',
      PGREPL_MASTER_PORT: '5432',
      PGREPL_TOKEN: 'tok-with $ & < > = chars',
      POSTGRES_PASSWORD: "p@ss'w&rd",
    });
    expect(app.constraints).toEqual([['hostname', 'UNLIKE', '10[.]0[.]1[.]11']]);
    expect([app.id, app.container.docker.image, app.container.volumes[0].persistent.size, app.cpus, app.mem]).toEqual(['/db/pgrepl2', 'registry.example.com/pgrepl:15', 250, 2, 2048]);
  });

  it.each([
    [{ pgrepl: { replication_token_secret: 'pgrepl/token' } }, { pgrepltoken: { source: 'pgrepl/token' } }],
    [{ postgres: { password_secret: 'pgrepl/password' } }, { pgpassword: { source: 'pgrepl/password' } }],
    [{ pgrepl: { replication_token_secret: 'pgrepl/token', replication_token: 'ignored' }, postgres: { password_secret: 'pgrepl/password' } }, { pgrepltoken: { source: 'pgrepl/token' }, pgpassword: { source: 'pgrepl/password' } }],
  ])('secrets from the DC/OS secret store: %j', (given, secrets) => {
    const app = render(options(given as any));
    expectAccepted(app);
    expect(app.secrets).toEqual(secrets);
    for (const [name, ref] of Object.entries({ PGREPL_TOKEN: 'pgrepltoken', POSTGRES_PASSWORD: 'pgpassword' })) {
      if (ref in secrets) expect(app.env[name]).toEqual({ secret: ref });
      else expect(app.env).not.toHaveProperty(name);
    }
  });

  it('HA mode: etcd endpoints, cluster, addresses and sync standbys as marathon/ha.sh gives them; the API on a second port with its VIP, checked on /liveness', () => {
    const L4LB = 'marathon.l4lb.thisdcos.directory';
    const app = render(
      options({
        service: { name: '/pgrepl/node2', vip: '/node2.pgrepl:5432', avoid_hosts: '10[.]0[.]1[.]11' },
        pgrepl: { node_name: 'pgrepl_node2', replication_token: 'tok', upstream_host: 'ignored.example', peers: 'ignored.example:5432' },
        postgres: { password: 'pw' },
        ha: {
          etcd_endpoints: 'http://etcd-0.example:2379,http://etcd-1.example:2379', cluster: 'orders', sync_standbys: 1, nofailover: true,
          connect_address: `node2.pgrepl.${L4LB}:5432`, api_vip: '/node2.pgrepl:8008', api_connect_address: `node2.pgrepl.${L4LB}:8008`,
        },
      } as any),
    );
    expectAccepted(app);
    expect(app.container.portMappings).toEqual([
      { name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/node2.pgrepl:5432' } },
      { name: 'api', containerPort: 8008, hostPort: 0, protocol: 'tcp', labels: { VIP_1: '/node2.pgrepl:8008' } },
    ]);
    // no PGREPL_PEERS or PGREPL_MASTER_*: HA mode ignores them (etcd decides whom standbys follow)
    expect(app.env).toEqual({
      PGREPL_ROLE: 'PRIMARY',
      PGDATA: '/mnt/mesos/sandbox/pgdata',
      PGREPL_NODE_NAME: 'pgrepl_node2',
      PGREPL_ETCD_ENDPOINTS: 'http://etcd-0.example:2379,http://etcd-1.example:2379',
      PGREPL_CLUSTER: 'orders',
      PGREPL_CONNECT_ADDRESS: `node2.pgrepl.${L4LB}:5432`,
      PGREPL_API_LISTEN: '0.0.0.0:8008',
      PGREPL_API_CONNECT_ADDRESS: `node2.pgrepl.${L4LB}:8008`,
      PGREPL_SYNC_STANDBYS: '1',
      PGREPL_NOFAILOVER: 'on',
      PGREPL_TOKEN: 'tok',
      POSTGRES_PASSWORD: 'pw',
    });
    expect(app.healthChecks).toEqual([
      { protocol: 'MESOS_HTTP', path: '/liveness', portIndex: 1, gracePeriodSeconds: 900, intervalSeconds: 10, timeoutSeconds: 5, maxConsecutiveFailures: 3, delaySeconds: 15 },
    ]);
    expect(app.constraints).toEqual([['hostname', 'UNLIKE', '10[.]0[.]1[.]11']]);
    const async = render(options({ ha: { etcd_endpoints: 'https://etcd:2379', connect_address: 'n1:5432', api_vip: '/n1:8008', api_connect_address: 'n1:8008' } } as any));
    expectAccepted(async);
    expect([async.env.PGREPL_CLUSTER, async.env.PGREPL_SYNC_STANDBYS, async.env.PGREPL_NOFAILOVER]).toEqual(['pgrepl', '0', undefined]);
  });

  it.each([
    [{ ha: { etcd_endpoints: 'http://etcd:2379' } }],
    [{ ha: { etcd_endpoints: 'http://etcd:2379', connect_address: 'n1:5432', api_vip: '/n1:8008' } }],
    [{ ha: { etcd_endpoints: 'etcd:2379', connect_address: 'n1:5432', api_vip: '/n1:8008', api_connect_address: 'n1:8008' } }],
    [{ ha: { etcd_endpoints: 'http://etcd:2379", "x', connect_address: 'n1:5432', api_vip: '/n1:8008', api_connect_address: 'n1:8008' } }],
    [{ ha: { cluster: 'a/b' } }],
    [{ ha: { connect_address: 'n1' } }],
    [{ ha: { sync_standbys: -1 } }],
  ])('HA options that would make a node that cannot start, or bad JSON, are refused by config.json: %j', (given) => {
    expect(() => options(given as any)).toThrow(/refused by config.json/);
  });

  it.each([
    [{ postgres: { password: 'a"b' } }],
    [{ pgrepl: { replication_token: 'a\\b' } }],
    [{ service: { name: 'pgrepl_1' } }],
    [{ service: { vip: 'primary' } }],
    [{ service: { avoid_hosts: '10\\.0' } }],
    [{ pgrepl: { role: 'MASTER' } }],
    [{ pgrepl: { node_name: 'Node-1' } }],
    [{ pgrepl: { peers: 'primary.pgrepl", x' } }],
    [{ pgrepl: { peers: 'a:5432,' } }],
  ])('options that would make bad JSON or a bad app are refused by config.json: %j', (given) => {
    expect(() => options(given as any)).toThrow(/refused by config.json/);
  });
});
