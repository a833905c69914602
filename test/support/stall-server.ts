/**
 * Servers that accept a TCP connection and then stop answering, as a hung peer does (a machine
 * frozen mid-flight, a half-dead network path, a SIGSTOPped postmaster):
 *   - 'accept': accepts and never sends a byte;
 *   - 'after-startup': relays to a real PostgreSQL server until it has said ReadyForQuery once
 *     (authentication done), then swallows everything both ways: the next query never returns.
 * Connections are held open (never closed) until the server is closed.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface StallServer {
  port: number;
  /** How many connections it accepted. */
  accepted(): number;
  close(): Promise<void>;
}

export type StallMode = { stall: 'accept' } | { stall: 'after-startup'; upstreamPort: number };

/**
 * Whether `buf` (everything the server sent so far) holds a complete ReadyForQuery message:
 * messages are a type byte and a 4-byte length that counts itself.
 */
function holdsReadyForQuery(buf: Buffer): number {
  let at = 0;
  while (at + 5 <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    if (at + 1 + len > buf.length) return -1;
    if (buf[at] === 0x5a /* Z */) return at + 1 + len;
    at += 1 + len;
  }
  return -1;
}

export async function stallServer(port: number, mode: StallMode): Promise<StallServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const hold = (s: Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  };
  const server: Server = createServer((client) => {
    accepted++;
    hold(client);
    if (mode.stall === 'accept') return;
    const real = connect(mode.upstreamPort, '127.0.0.1');
    hold(real);
    let fromServer = Buffer.alloc(0);
    let stalled = false;
    client.on('data', (d) => {
      if (!stalled) real.write(d);
    });
    real.on('data', (d) => {
      if (stalled) return;
      fromServer = Buffer.concat([fromServer, d]);
      const end = holdsReadyForQuery(fromServer);
      if (end < 0) return void client.write(d);
      // Pass on the startup up to its ReadyForQuery, then nothing more.
      client.write(d.subarray(0, d.length - (fromServer.length - end)));
      stalled = true;
    });
  });
  await new Promise<void>((res, rej) => server.once('error', rej).listen(port, '127.0.0.1', () => res()));
  return {
    port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
