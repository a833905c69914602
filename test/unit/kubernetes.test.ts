/**
 * kubernetes/ without a cluster: every object kustomize would apply is validated against
 * Kubernetes' own OpenAPI schemas (kubernetes-models: classes generated from the upstream
 * specification, validating with it), and the references between the objects, and between the
 * objects and pgrepl, are checked: Services select the pods that have their ports, the pgrepl
 * container's environment is one src/config accepts and reads as meant, the probes ask paths the
 * agent's API serves on the port it listens on, and HAProxy checks what SPEC §7 says it should.
 * test/container/kubernetes.test.ts runs the pgrepl pod itself.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/env.js';
import { UserError } from '../../src/errors.js';
import { parseLag, startApi, type HaApi } from '../../src/ha/api.js';
import {
  containerEnv, containerPort, find, KUBERNETES_DIR, loadKustomization, loadManifests, unknownFields, type K8sObject,
} from '../support/kubernetes.js';

const manifests = loadManifests();
const objects = manifests.map((m) => m.object);
const NAMESPACE = 'shop';

type Model = new (data: object) => { validate(): void };
/** kubernetes-models' modules by apiVersion (v1 -> kubernetes-models/v1, apps/v1 -> kubernetes-models/apps/v1). */
const MODULES: Record<string, () => Promise<object>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
};

/** The kubernetes-models class for an object's apiVersion and kind. */
async function modelOf(o: { apiVersion: string; kind: string }): Promise<Model> {
  const load = MODULES[o.apiVersion];
  if (!load) throw new Error(`no kubernetes-models module for apiVersion ${o.apiVersion}: add it to MODULES`);
  const model = ((await load()) as Record<string, Model>)[o.kind];
  if (!model) throw new Error(`kubernetes-models has no ${o.kind} in ${o.apiVersion}`);
  return model;
}

async function validate(o: object & { apiVersion: string; kind: string }): Promise<void> {
  new (await modelOf(o))(o).validate();
}

const workloads = objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment');
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
/** The workloads whose pods a label selector selects. */
const selected = (selector: Record<string, string>) => workloads.filter((w) => selects(selector, w.spec.template.metadata.labels));

const pgreplSet = find(objects, 'StatefulSet', 'pgrepl');
const pgrepl = pgreplSet.spec.template.spec.containers.find((c: { name: string }) => c.name === 'pgrepl');
const etcdSet = find(objects, 'StatefulSet', 'etcd');

describe('the manifests', () => {
  it('kustomization.yaml lists every manifest in kubernetes/, and each parses', () => {
    const files = readdirSync(KUBERNETES_DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    expect(loadKustomization().resources.sort()).toEqual(files.sort());
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/pgrepl-haproxy', 'Deployment/pgrepl-haproxy', 'PodDisruptionBudget/etcd', 'PodDisruptionBudget/pgrepl',
      'Secret/pgrepl', 'Service/etcd', 'Service/pgrepl', 'Service/pgrepl-ro', 'Service/pgrepl-rw', 'StatefulSet/etcd', 'StatefulSet/pgrepl',
    ]);
  });

  it.each(manifests.map((m) => [`${m.object.kind}/${m.object.metadata.name} (${m.file})`, m.object] as const))(
    '%s is valid against the Kubernetes OpenAPI schema',
    async (_, object) => {
      await validate(object);
    },
  );

  it('the validation can fail: a wrong type, a missing required field, a value outside an enum', async () => {
    const broken: [string, (s: K8sObject) => void, RegExp][] = [
      ['replicas as a word', (s) => (s.spec.replicas = 'three'), /replicas.*integer/s],
      ['no selector', (s) => delete s.spec.selector, /selector/],
      ['a podManagementPolicy that does not exist', (s) => (s.spec.podManagementPolicy = 'AllAtOnce'), /podManagementPolicy/],
      ['a container port as text', (s) => (s.spec.template.spec.containers[0].ports[0].containerPort = '5432/tcp'), /containerPort/],
    ];
    for (const [what, change, message] of broken) {
      const sts = structuredClone(pgreplSet);
      change(sts);
      await expect(validate(sts), what).rejects.toThrow(message);
    }
  });
});

describe('fields the schemas would let through', () => {
  it('no object has a field Kubernetes does not know (the API server refuses or drops them; the schemas allow them)', () => {
    expect(unknownFields(objects)).toEqual([]);
  }, 30_000);

  it('the check can fail: a misspelt probe and an unknown field deep in a pod template', () => {
    const sts = structuredClone(pgreplSet);
    sts.spec.template.spec.containers[0].readinesProbe = sts.spec.template.spec.containers[0].readinessProbe;
    const svc = structuredClone(find(objects, 'Service', 'pgrepl'));
    svc.spec.ports[0].protocl = 'TCP';
    const found = unknownFields([svc, sts]);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^Service\/pgrepl: .*'"protocl"' does not exist in type 'IServicePort'/);
    expect(found[1]).toMatch(/^StatefulSet\/pgrepl: .*'"readinesProbe"' does not exist in type 'IContainer'/);
  }, 30_000);
});

describe('references between the objects', () => {
  it('every Service selects the pods of one workload, and those pods have its target ports', () => {
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const [workload, ...more] = selected(svc.spec.selector);
      expect(workload, `Service ${svc.metadata.name} selects no workload's pods`).toBeDefined();
      expect(more, `Service ${svc.metadata.name} selects several workloads' pods`).toEqual([]);
      const containers = workload!.spec.template.spec.containers;
      for (const port of svc.spec.ports) {
        const target = port.targetPort ?? port.port;
        expect(containers.some((c: object) => containerPort(c, target) !== undefined), `Service ${svc.metadata.name}: no container port ${target}`).toBe(true);
      }
    }
  });

  it('workloads select their own pods; StatefulSets are governed by a headless Service that selects them; the PodDisruptionBudgets cover them', () => {
    for (const w of workloads) {
      expect(selects(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${w.kind} ${w.metadata.name}`).toBe(true);
    }
    for (const sts of [pgreplSet, etcdSet]) {
      const svc = find(objects, 'Service', sts.spec.serviceName);
      expect(svc.spec.clusterIP).toBe('None');
      expect(selected(svc.spec.selector)).toEqual([sts]);
      const pdb = find(objects, 'PodDisruptionBudget', sts.metadata.name);
      expect(selected(pdb.spec.selector.matchLabels)).toEqual([sts]);
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(sts.spec.replicas).toBe(3);
    }
  });

  it('every volume mount names a volume or a claim template; the Secret and ConfigMap named exist with the keys used', () => {
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      const volumes = [...(spec.volumes ?? []), ...(w.spec.volumeClaimTemplates ?? []).map((c: K8sObject) => ({ name: c.metadata.name }))];
      for (const c of spec.containers) {
        for (const m of c.volumeMounts ?? []) expect(volumes.map((v) => v.name), `${w.metadata.name}/${c.name}: ${m.name}`).toContain(m.name);
      }
      for (const v of spec.volumes ?? []) {
        if (v.secret) find(objects, 'Secret', v.secret.secretName);
        if (v.configMap) find(objects, 'ConfigMap', v.configMap.name);
      }
    }
    // The pgrepl container's *_FILE variables name keys of the Secret, where it is mounted.
    const secretVolume = pgreplSet.spec.template.spec.volumes.find((v: { secret?: unknown }) => v.secret);
    const mount = pgrepl.volumeMounts.find((m: { name: string }) => m.name === secretVolume.name);
    const secret = find(objects, 'Secret', secretVolume.secret.secretName);
    const files = pgrepl.env.filter((e: { name: string }) => e.name.endsWith('_FILE'));
    expect(files.map((e: { name: string }) => e.name).sort()).toEqual(['PGREPL_TOKEN_FILE', 'POSTGRES_PASSWORD_FILE']);
    for (const e of files) {
      expect(e.value.startsWith(`${mount.mountPath}/`), e.name).toBe(true);
      expect(Object.keys(secret.data), e.name).toContain(e.value.slice(mount.mountPath.length + 1));
    }
    expect(mount.readOnly).toBe(true);
    // Read by the entrypoint as root, before it drops to postgres: nobody else needs them.
    expect(secretVolume.secret.defaultMode).toBe(0o400);
  });

  it("no Service variables in pgrepl's environment (it would read POSTGRES_PORT_5432_TCP_ADDR as an upstream)", () => {
    expect(pgreplSet.spec.template.spec.enableServiceLinks).toBe(false);
  });
});

describe("the pgrepl container's environment, as src/config reads it", () => {
  let dir: string;
  const configOf = (hostname: string, change: (env: Record<string, string>) => void = () => undefined) => {
    const env = containerEnv(pgrepl, { 'metadata.name': hostname, 'metadata.namespace': NAMESPACE });
    // The Secret's files, where this test can write them.
    for (const name of ['POSTGRES_PASSWORD_FILE', 'PGREPL_TOKEN_FILE']) {
      const file = join(dir, name);
      writeFileSync(file, `${name}-value\n`);
      env[name] = file;
    }
    change(env);
    return loadConfig(env, hostname);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgrepl-k8s-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names only variables pgrepl reads (and the two the others refer to)', () => {
    const names: string[] = pgrepl.env.map((e: { name: string }) => e.name);
    const referenced = names.filter((n) => pgrepl.env.some((e: { value?: string }) => e.value?.includes(`$(${n})`)));
    expect(referenced.sort()).toEqual(['NAMESPACE', 'POD_NAME']);
    expect(names.filter((n) => !CONFIG_VARIABLES.includes(n) && !referenced.includes(n))).toEqual([]);
  });

  it("is accepted: HA mode on the StatefulSet's etcd members, addresses on the headless Service's stable names, the node named after its pod", () => {
    const cfg = configOf('pgrepl-1');
    const ha = cfg.ha!;
    const svc = find(objects, 'Service', pgreplSet.spec.serviceName);
    const host = `pgrepl-1.${svc.metadata.name}.${NAMESPACE}.svc`;
    expect(ha.connectAddress).toEqual({ host, port: containerPort(pgrepl, 'postgresql') });
    expect(ha.apiConnectAddress).toEqual({ host, port: containerPort(pgrepl, 'api') });
    expect(cfg.port).toBe(containerPort(pgrepl, 'postgresql'));
    expect(ha.apiListen.port).toBe(containerPort(pgrepl, 'api'));
    const etcdClient = containerPort(etcdSet.spec.template.spec.containers[0], 'client');
    const members = Array.from({ length: etcdSet.spec.replicas }, (_, i) => `http://etcd-${i}.${etcdSet.spec.serviceName}.${NAMESPACE}.svc:${etcdClient}`);
    expect(ha.etcd.endpoints).toEqual(members);
    // etcd's own member list names the same members.
    const initial = etcdSet.spec.template.spec.containers[0].command.find((a: string) => a.startsWith('--initial-cluster='));
    expect(initial.split('=').length - 2).toBe(etcdSet.spec.replicas);
    expect(cfg.nodeName).toBe('pgrepl_1');
    expect(cfg.nodeNameFromEnv).toBe(false);
    expect(cfg.pgdata.startsWith(`${pgrepl.volumeMounts.find((m: { name: string }) => m.name === 'data').mountPath}/`)).toBe(true);
    expect(cfg.postgresPassword?.reveal()).toBe('POSTGRES_PASSWORD_FILE-value');
    expect(cfg.replicationOn).toBe(true);
  });

  it('PGREPL_NODE_NAME=$(POD_NAME) would be refused: a pod name has a hyphen, a node name is a slot name', () => {
    expect(() => configOf('pgrepl-0', (env) => (env.PGREPL_NODE_NAME = env.POD_NAME!))).toThrow(UserError);
    expect(() => configOf('pgrepl-0', (env) => (env.PGREPL_NODE_NAME = env.POD_NAME!))).toThrow(/PGREPL_NODE_NAME="pgrepl-0" is not valid/);
  });
});

describe('probes and HAProxy against the agent API', () => {
  let api: HaApi;
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${api.address.port}${path}`)).status;

  beforeAll(async () => {
    api = await startApi({ host: '127.0.0.1', port: 0, ttl: 10 });
  });
  afterAll(() => api.close());

  it('the probes ask paths the API serves, on the port it listens on', async () => {
    const port = loadConfig({ PGREPL_ETCD_ENDPOINTS: 'http://etcd:2379' }, 'x').ha!.apiListen.port;
    for (const [probe, expected] of [['livenessProbe', 200], ['readinessProbe', 503]] as const) {
      const { path, port: named } = pgrepl[probe].httpGet;
      expect(path).toBe(`/${probe.replace('Probe', '')}`);
      expect(containerPort(pgrepl, named), probe).toBe(port);
      // A fresh agent: alive (within TTL), not ready (no loop yet). Not 404: the path exists.
      expect(await get(path), probe).toBe(expected);
    }
  });

  it('haproxy.cfg: rw on 5432 checks GET /primary, ro on 5433 GET /replica?lag=16MB, on every node of the headless Service at its API port; a node marked down has its sessions cut', async () => {
    const cfg: string = find(objects, 'ConfigMap', 'pgrepl-haproxy').data['haproxy.cfg'];
    /** The indented lines under a section's header line. */
    const section = (header: string) => new RegExp(`^${header}\\n((?:[ \\t]+.*\\n|\\n)*)`, 'm').exec(cfg)?.[1] ?? '';
    const defaults = section('defaults');
    const apiPort = containerPort(pgrepl, 'api');
    expect(defaults).toMatch(new RegExp(`^\\s*default-server .*\\bcheck port ${apiPort}\\b`, 'm'));
    expect(defaults).toMatch(/^\s*default-server .*\bon-marked-down shutdown-sessions\b/m);
    const haproxy = find(objects, 'Deployment', 'pgrepl-haproxy').spec.template.spec.containers[0];
    const svc = find(objects, 'Service', pgreplSet.spec.serviceName);
    const postgresPort = svc.spec.ports.find((p: { targetPort: string }) => p.targetPort === 'postgresql');
    for (const [name, bind, check, service] of [['rw', 5432, '/primary', 'pgrepl-rw'], ['ro', 5433, '/replica?lag=16MB', 'pgrepl-ro']] as const) {
      const body = section(`listen ${name}`);
      expect(body, name).toMatch(new RegExp(`^\\s*bind :${bind}$`, 'm'));
      expect(body, name).toContain(`option httpchk GET ${check}\n`);
      expect(body, name).toMatch(/^\s*http-check expect status 200$/m);
      // The headless Service's SRV records: one per pgrepl pod, with its postgres port.
      expect(body, name).toContain(`"_${postgresPort.name}._tcp.${svc.metadata.name}.\${NAMESPACE}.svc.\${CLUSTER_DOMAIN}"`);
      expect(containerPort(haproxy, name), name).toBe(bind);
      expect(find(objects, 'Service', service).spec.ports[0].targetPort).toBe(name);
      // The API serves the check (a fresh agent: 503, not 404 or 400 for the lag).
      expect(await get(check), check).toBe(503);
    }
    expect(parseLag('16MB')).toBe(16 * 1024 * 1024);
    // Every ${VAR} haproxy.cfg uses is in HAProxy's environment; the ConfigMap is where the image reads its configuration.
    const envNames = haproxy.env.map((e: { name: string }) => e.name);
    for (const [, v] of cfg.matchAll(/\$\{(\w+)\}/g)) expect(envNames).toContain(v);
    const mount = haproxy.volumeMounts.find((m: { name: string }) => m.name === 'config');
    expect(`${mount.mountPath}/haproxy.cfg`).toBe('/usr/local/etc/haproxy/haproxy.cfg');
  });
});
