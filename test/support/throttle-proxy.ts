/**
 * A TCP proxy on 127.0.0.1 that slows what the server sends (server -> client) down to a rate per
 * connection, as a slow link does: it makes a clone last long enough to look at it while it runs.
 * The client -> server direction is not slowed. Bounded: at most `maxConnections` at a time, and
 * it closes itself (and every connection through it) after `lifetimeMs`, so a test that forgets it
 * cannot leave it running.
 */
import net from 'node:net';

export interface ThrottleProxyOptions {
  listenPort: number;
  targetPort: number;
  /** Bytes per second per connection, server -> client; Infinity: not slowed. */
  bytesPerSecond: number;
  maxConnections?: number;
  lifetimeMs?: number;
}

export interface ThrottleProxy {
  /** Changes the rate of every connection, open ones included (Infinity opens the throttle). */
  setRate(bytesPerSecond: number): void;
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  server: net.Socket;
  /** A token bucket: bytes it may still pass (negative: owed), refilled at the rate since `at`. */
  tokens: number;
  at: number;
  resumeTimer?: NodeJS.Timeout;
}

export async function startThrottleProxy(o: ThrottleProxyOptions): Promise<ThrottleProxy> {
  let rate = o.bytesPerSecond;
  const links = new Set<Link>();

  /** Takes `bytes` from the bucket; in debt, stops reading from the server until it is paid. */
  const pace = (link: Link, bytes: number) => {
    if (!Number.isFinite(rate)) return;
    const now = Date.now();
    // At most one second of credit: a connection that was idle does not then burst at full speed.
    link.tokens = Math.min(rate, link.tokens + ((now - link.at) / 1000) * rate) - bytes;
    link.at = now;
    if (link.tokens >= 0 || link.resumeTimer) return;
    const dueMs = (-link.tokens / rate) * 1000;
    link.server.pause();
    link.resumeTimer = setTimeout(() => {
      link.resumeTimer = undefined;
      link.server.resume();
    }, dueMs);
  };

  const server = net.createServer((client) => {
    if (links.size >= (o.maxConnections ?? 20)) return client.destroy();
    const upstream = net.connect(o.targetPort, '127.0.0.1');
    const link: Link = { client, server: upstream, tokens: 0, at: Date.now() };
    links.add(link);
    const end = () => {
      clearTimeout(link.resumeTimer);
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      // Backpressure from a slow client as well as from the rate.
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => link.resumeTimer || upstream.resume());
      }
      pace(link, chunk.length);
    });
  });
  server.maxConnections = o.maxConnections ?? 20;
  await new Promise<void>((res, rej) => server.once('error', rej).listen(o.listenPort, '127.0.0.1', () => res()));

  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((res) => {
      clearTimeout(lifetime);
      for (const l of links) {
        clearTimeout(l.resumeTimer);
        l.client.destroy();
        l.server.destroy();
      }
      links.clear();
      server.close(() => res());
    }));
  const lifetime = setTimeout(() => void close(), o.lifetimeMs ?? 10 * 60_000);
  lifetime.unref();

  return {
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
      for (const l of links) {
        // A new budget from now on, and whatever waited for the old one goes on at once.
        l.tokens = 0;
        l.at = Date.now();
        clearTimeout(l.resumeTimer);
        l.resumeTimer = undefined;
        l.server.resume();
      }
    },
    close,
  };
}
