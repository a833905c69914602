/**
 * A TCP proxy on 127.0.0.1 between one HA node and one etcd member, that a test can cut and
 * restore, as a network partition between that node and etcd does. Cut, every open connection is
 * destroyed at once (a watch or a keep-alive in flight fails), and new ones are either
 *   - 'blackhole': accepted and never answered (a partition as packets see it: the client's own
 *     deadline is all that ends a call), or
 *   - 'refuse': refused (the listener is closed: ECONNREFUSED, as a host that is up without etcd).
 * Restored, new connections are relayed again; the black-holed ones stay dead (they never carried
 * anything). One proxy per etcd member, the node's PGREPL_ETCD_ENDPOINTS naming the proxies.
 */
import net from 'node:net';

export type CutMode = 'blackhole' | 'refuse';

export interface CutProxy {
  readonly listenPort: number;
  readonly targetPort: number;
  /** The URL to give the node instead of the member's. */
  readonly url: string;
  /** Destroys every open connection; new ones are black-holed or refused until restore(). */
  cut(mode?: CutMode): Promise<void>;
  restore(): Promise<void>;
  readonly isCut: boolean;
  /** Connections relayed so far (a test can see that the node used the proxy at all). */
  relayed(): number;
  close(): Promise<void>;
}

export async function startCutProxy(listenPort: number, targetPort: number): Promise<CutProxy> {
  const open = new Set<net.Socket>();
  let mode: CutMode | undefined;
  let relayed = 0;
  let listening = false;

  const track = (s: net.Socket) => {
    open.add(s);
    s.on('error', () => undefined);
    s.on('close', () => open.delete(s));
  };

  const server = net.createServer((client) => {
    track(client);
    // Cut (black hole): hold the connection, read and drop whatever comes, answer nothing.
    if (mode) return void client.resume();
    relayed++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    track(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  const listen = () =>
    new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(listenPort, '127.0.0.1', () => {
        server.off('error', rej);
        listening = true;
        res();
      });
    });
  const stopListening = () =>
    new Promise<void>((res) => {
      if (!listening) return res();
      listening = false;
      server.close(() => res());
    });
  const destroyAll = () => {
    for (const s of open) s.destroy();
    open.clear();
  };

  await listen();
  return {
    listenPort,
    targetPort,
    url: `http://127.0.0.1:${listenPort}`,
    async cut(how: CutMode = 'blackhole') {
      mode = how;
      if (how === 'refuse') await Promise.all([stopListening(), Promise.resolve(destroyAll())]);
      else destroyAll();
    },
    async restore() {
      // The black-holed connections never reached etcd: drop them, so the client's next call uses a fresh one.
      destroyAll();
      mode = undefined;
      if (!listening) await listen();
    },
    get isCut() {
      return mode !== undefined;
    },
    relayed: () => relayed,
    async close() {
      mode = 'refuse';
      destroyAll();
      await stopListening();
    },
  };
}
