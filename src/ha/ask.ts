/**
 * Asking other members' agents over their HTTP API (api.ts), for the decisions that must not rest
 * on positions up to a loop old: the failover race compares the candidates' CURRENT received
 * positions, the leader in a switchover asks whether the candidate received its shutdown
 * checkpoint, `pgrepl failover` says how much may be lost, `pgrepl switchover` waits for /primary.
 *
 * Every request is bounded (a member that accepts and then stalls, a frozen host, costs at most
 * the bound), and nothing here throws: an answer that is missing, late or malformed is an error,
 * one line, and decide.ts passes that member over.
 */
import { request, type ClientRequest } from 'node:http';
import { isPosition } from './api.js';
import type { Answer, MemberKey } from './types.js';

/** More than any answer of ours; a larger body is not one. */
const MAX_BODY = 64 * 1024;

export interface HttpReply {
  status: number;
  body: string;
}

/** A body or an error, cut to one short line for a log or a message. */
const oneLine = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 120 ? `${line.slice(0, 120)}…` : line;
};

/**
 * GET http://<api><path>, no keep-alive, within `timeoutMs` for the whole exchange. Resolves with
 * the status and body, or with the reason there is none (connection refused, no answer in time,
 * a body over 64 KiB); never rejects.
 */
export function httpGet(api: string, path: string, timeoutMs: number): Promise<HttpReply | { error: string }> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(`http://${api}${path}`);
    } catch {
      return resolve({ error: 'not host:port' });
    }
    let done = false;
    let req: ClientRequest | undefined;
    const finish = (r: HttpReply | { error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    try {
      req = request(url, { method: 'GET', agent: false, headers: { accept: 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (body.length > MAX_BODY) finish({ error: `an answer over ${MAX_BODY} bytes` });
        });
        res.on('end', () => finish({ status: res.statusCode ?? 0, body }));
        res.on('error', (err) => finish({ error: oneLine(err.message) }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => finish({ error: oneLine(err.code ?? err.message) }));
      req.end();
    } catch (err) {
      finish({ error: oneLine((err as Error).message) });
    }
  });
}

/** One member's /position answer, checked: the asked member's name (or none yet), an LSN, a timeline of 1 or more. */
export function positionAnswer(name: string, reply: HttpReply): Answer {
  let value: unknown;
  try {
    value = JSON.parse(reply.body);
  } catch {
    return { error: `HTTP ${reply.status}, not JSON: ${JSON.stringify(oneLine(reply.body).slice(0, 60))}` };
  }
  const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (reply.status !== 200) return { error: `HTTP ${reply.status}${typeof o.error === 'string' ? `: ${oneLine(o.error)}` : ''}` };
  // Another node answering at this member's API address (a wrong PGREPL_API_CONNECT_ADDRESS) must not stand in for it.
  if (o.name !== null && o.name !== undefined && o.name !== name) return { error: `answered as ${JSON.stringify(o.name)}, not ${name}` };
  if (!isPosition(o)) return { error: `not a position: ${oneLine(reply.body).slice(0, 80)}` };
  return { received: o.received, timeline: o.timeline };
}

/**
 * Asks each named member's /position, all at once, each within `timeoutMs`. Every name gets an
 * answer: a position, or {error} (no member key, no answer, refused, late, malformed). Never throws.
 */
export async function askMembers(members: MemberKey[], names: string[], timeoutMs: number): Promise<Record<string, Answer>> {
  const asked = await Promise.all(names.map(async (name): Promise<[string, Answer]> => {
    const m = members.find((x) => x.name === name);
    if (!m) return [name, { error: 'not a member (no member key)' }];
    const reply = await httpGet(m.api, '/position', timeoutMs);
    if ('error' in reply) return [name, { error: `${m.api}: ${reply.error}` }];
    const a = positionAnswer(name, reply);
    return [name, 'error' in a ? { error: `${m.api}: ${a.error}` } : a];
  }));
  return Object.fromEntries(asked);
}
