/**
 * The pgrepl pod of kubernetes/pgrepl.yaml, run with `podman kube play` (podman plays Pods and
 * Deployments, not StatefulSets: the pod is the one the StatefulSet controller would make for
 * pgrepl-0, test/support/kubernetes.ts) on the image under test, with an etcd this test starts
 * on the host: env (downward API, $(VAR) references, *_FILE secrets), volumes (the claim, the
 * Secret's files) and the probes' endpoints work with the image, and the node becomes the leader.
 *
 * What podman 4.3 (Debian 12) does not do as Kubernetes does, and so what this test does for it:
 * - $(VAR) references in env values stay literal, and the field metadata.namespace is refused:
 *   the test expands them as the kubelet would (metadata.name is left to podman).
 * - A Secret volume gets each `data` value verbatim (not base64-decoded; stringData is dropped):
 *   the test creates the podman secret with the values as they should land in the files.
 * - Probes: the liveness probe becomes a healthcheck that runs curl inside the container (the
 *   image has none) and only under systemd; the readiness probe is ignored. The test asks the
 *   probes' paths itself, as the kubelet does: from the host, at the pod's IP and the probe's port.
 * Names are the test's own (the scope's prefix); the pod's host name is pgrepl-0, as the
 * controller sets it, so the node is pgrepl_0. Its etcd endpoints are the test's etcd, on the
 * pod network's gateway; everything else is the manifest's.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { stringify } from 'yaml';
import { Secret } from '../../src/config/secret.js';
import { replicationPassword } from '../../src/config/token.js';
import { identifySystem, withReplicationClient } from '../../src/postgres/replication.js';
import { waitFor } from '../support/cluster.js';
import { EtcdCluster } from '../support/etcd-cluster.js';
import { containerEnv, containerPort, find, loadManifests, podFromStatefulSet } from '../support/kubernetes.js';
import { IMAGE, SUPERUSER_PASSWORD, TOKEN, WORK, Scope, logs, podman, podmanOk } from './support.js';

/** etcd's client port on the host (and its peer port, + 1): this file's, in 6301-6349. */
const ETCD_PORT = 6321;
const NAMESPACE = 'pgrepl-ct';

const scope = new Scope();
const podName = `${scope.prefix}-pgrepl-0`;
const secretName = `${scope.prefix}-secrets`;
const podFile = join(WORK, `${scope.prefix}-pod.yaml`);
const secretFile = join(WORK, `${scope.prefix}-secret.yaml`);
let etcd: EtcdCluster | undefined;

beforeAll(async () => {
  const r = await podman(['image', 'exists', IMAGE]);
  if (r.code !== 0) throw new Error(`${IMAGE} is not built: run the container tests through their vitest project (its globalSetup builds it)`);
});

afterAll(async () => {
  await podman(['pod', 'rm', '-f', '-t', '0', podName]);
  // podman keeps a Secret volume's files in a volume named after the secret.
  await podman(['volume', 'rm', '-f', secretName]);
  await podman(['secret', 'rm', secretName]);
  await scope.cleanup();
  await etcd?.stopAll();
  rmSync(podFile, { force: true });
  rmSync(secretFile, { force: true });
});

/** The pod's address on its network, where the kubelet sends its probes. */
async function podIp(): Promise<string> {
  const infra = (await podmanOk(['pod', 'inspect', podName, '--format', '{{.InfraContainerID}}'])).trim();
  return (await podmanOk(['inspect', infra, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'])).trim();
}

describe('kubernetes/pgrepl.yaml in podman kube play', () => {
  it("the StatefulSet's pod: env, the claim and the Secret's files work with the image; its probes answer 200; it leads", async () => {
    const objects = loadManifests().map((m) => m.object);
    const sts = find(objects, 'StatefulSet', 'pgrepl');
    const net = await scope.network();
    const gateway = (await podmanOk(['network', 'inspect', net, '--format', '{{range .Subnets}}{{.Gateway}}{{end}}'])).trim();

    const pod = podFromStatefulSet(sts, 0, { podName: () => podName, claimName: (c) => `${scope.prefix}-${c}` });
    const container = pod.spec.containers.find((c: { name: string }) => c.name === 'pgrepl');
    container.image = IMAGE;
    const kubelet = containerEnv(container, { 'metadata.name': podName, 'metadata.namespace': NAMESPACE });
    container.env = container.env.map((e: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }) =>
      e.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? e : { name: e.name, value: e.name === 'PGREPL_ETCD_ENDPOINTS' ? `http://${gateway}:${ETCD_PORT}` : kubelet[e.name] },
    );
    const secretVolume = pod.spec.volumes.find((v: { secret?: unknown }) => v.secret);
    const keys = Object.keys(find(objects, 'Secret', secretVolume.secret.secretName).data);
    secretVolume.secret.secretName = secretName;
    const values: Record<string, string> = { 'postgres-password': SUPERUSER_PASSWORD, 'pgrepl-token': TOKEN };
    writeFileSync(secretFile, stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName }, data: Object.fromEntries(keys.map((k) => [k, values[k]])) }), { mode: 0o600 });
    await podmanOk(['secret', 'create', secretName, secretFile]);
    const claim = pod.spec.volumes.find((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim).persistentVolumeClaim.claimName;
    await podmanOk(['volume', 'create', '--label', scope.label, claim]);
    writeFileSync(podFile, stringify(pod));
    await podmanOk(['kube', 'play', '--network', net, podFile]);
    const ctr = `${podName}-pgrepl`;

    // The pod network's bridge exists now: etcd listens on its gateway too.
    etcd = await EtcdCluster.start({
      basePort: ETCD_PORT,
      members: 1,
      extraArgs: [`--listen-client-urls=http://127.0.0.1:${ETCD_PORT},http://${gateway}:${ETCD_PORT}`, `--advertise-client-urls=http://${gateway}:${ETCD_PORT}`],
    });

    const ip = await podIp();
    const probe = async (p: { httpGet: { port: string | number; path: string } }) => {
      const url = `http://${ip}:${containerPort(container, p.httpGet.port)}${p.httpGet.path}`;
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      return { status: res?.status, body: (await res?.json().catch(() => undefined)) as Record<string, unknown> | undefined };
    };
    const primary = { httpGet: { port: 'api', path: '/primary' } };
    await waitFor('the pod to answer 200 on /primary', async () => (await probe(primary)).status === 200, 150_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await logs(ctr)}`);
    });

    // The probes, as the kubelet sends them: 200, from the node named after the pod's host name.
    for (const p of [container.livenessProbe, container.readinessProbe]) {
      const answer = await probe(p);
      expect(answer.status, p.httpGet.path).toBe(200);
      expect(answer.body?.name).toBe('pgrepl_0');
    }
    // podman read the liveness probe (its path and port) into a healthcheck.
    const healthcheck = JSON.parse(await podmanOk(['inspect', ctr, '--format', '{{json .Config.Healthcheck.Test}}'])) as string[];
    expect(healthcheck.join(' ')).toContain(`http://localhost:${containerPort(container, container.livenessProbe.httpGet.port)}${container.livenessProbe.httpGet.path}`);

    // env: the downward API's pod name, the addresses on the Service's stable name, published in etcd.
    const env = Object.fromEntries((await podmanOk(['exec', ctr, 'env'])).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env.POD_NAME).toBe(podName);
    expect(env.PGREPL_CONNECT_ADDRESS).toBe(`${podName}.pgrepl.${NAMESPACE}.svc:5432`);
    expect(env.PGREPL_NODE_NAME).toBeUndefined();
    const listing = JSON.parse(await podmanOk(['exec', ctr, 'pgrepl', 'list', '--json'])) as { leader: string; members: { name: string; address: string; api: string }[] };
    expect(listing.leader).toBe('pgrepl_0');
    expect(listing.members).toEqual([expect.objectContaining({ name: 'pgrepl_0', address: env.PGREPL_CONNECT_ADDRESS, api: env.PGREPL_API_CONNECT_ADDRESS })]);

    // The Secret's files: the superuser's password is the one in postgres-password, and no
    // other (asked over the pod's address, as a client through a Service would).
    const login = async (password: string) => {
      const client = new pg.Client({ host: ip, port: containerPort(container, 'postgresql'), user: 'postgres', database: 'postgres', password });
      try {
        await client.connect();
        return (await client.query<{ one: number }>('select 1 as one')).rows[0]!.one;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await login(SUPERUSER_PASSWORD)).toBe(1);
    await expect(login('not-the-password')).rejects.toThrow(/password authentication failed/);
    // ... and the replication token is the one in pgrepl-token: a standby with it may replicate.
    const replicate = (token: string) =>
      withReplicationClient({ host: ip, port: containerPort(container, 'postgresql')!, password: new Secret(replicationPassword(token)), applicationName: 'k8s_test' }, identifySystem);
    expect((await replicate(TOKEN)).timeline).toBe(1);
    await expect(replicate('not-the-token')).rejects.toThrow(/password authentication failed/);

    // The claim: PGDATA is inside the volume podman made for it.
    const mountpoint = (await podmanOk(['volume', 'inspect', claim, '--format', '{{.Mountpoint}}'])).trim();
    expect(existsSync(join(mountpoint, env.PGDATA!.slice('/var/lib/postgresql/data/'.length), 'PG_VERSION'))).toBe(true);
  });
});
