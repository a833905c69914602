/** The etcd client of an HA configuration, for the agent and the operator commands alike. */
import { readFileSync } from 'node:fs';
import type { HaConfig } from '../config/ha.js';
import { EtcdClient, type EtcdClientOptions } from '../etcd/index.js';

/** The etcd client the nodes and the commands use: TLS files read here (the client takes PEM contents), calls bounded by RETRY_TIMEOUT. */
export function etcdClientFor(ha: HaConfig): EtcdClient {
  const { caCert, clientCert, auth, endpoints } = ha.etcd;
  const options: EtcdClientOptions = {
    endpoints,
    timeoutMs: ha.timing.retryTimeout * 1000,
    ...((caCert || clientCert) && {
      tls: {
        ...(caCert && { ca: readFileSync(caCert) }),
        ...(clientCert && { cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) }),
      },
    }),
    ...(auth && { auth: { user: auth.user, password: auth.password.reveal() } }),
  };
  return new EtcdClient(options);
}
