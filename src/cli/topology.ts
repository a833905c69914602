/**
 * `pgrepl topology`: the picture of a cluster without HA mode, as `pgrepl list` draws an HA one:
 * each node under the node it streams from, cascades under their standby, with lag and sync marks.
 * It reads from stdin what `pgrepl status --json` printed on each node (docker/status.sh gathers
 * them: no node knows the others' status), so the picture is drawn by the code that draws
 * `pgrepl list`, wherever the scripts run.
 *
 * Who streams from whom comes from each node's walsenders (its `standbys`, named by the
 * application_name each standby connects with: its node name), as the upstream sees them; a node
 * that no node lists (not connected, or a primary) is a root.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { formatLag } from '../ha/list.js';
import { treeLines } from '../util/tree.js';
import { parseArgs, type Command } from './args.js';
import { COMMAND_HELP } from './help.js';
import type { NodeStatus } from './status.js';

/** One node as docker/status.sh hands it over. */
export interface TopologyEntry {
  /** The container's (or app's) name, drawn in the tree. */
  name: string;
  /** Its node name (PGREPL_NODE_NAME): the application_name its upstream lists it by. */
  node: string;
  /** `pgrepl status --json` of it; absent when it could not be asked. */
  status?: NodeStatus;
  /** Why it could not be asked (not running, ...). */
  error?: string;
}

export function topologyTable(entries: TopologyEntry[]): string {
  const byNode = new Map(entries.map((e) => [e.node, e]));
  /** node name -> [its upstream's entry, the upstream's walsender row for it] */
  const seenBy = new Map<string, { up: TopologyEntry; row: NodeStatus['standbys'][number] }>();
  for (const up of entries) {
    for (const row of up.status?.standbys ?? []) {
      if (row.state !== 'cloning' && byNode.has(row.name) && row.name !== up.node && !seenBy.has(row.name)) seenBy.set(row.name, { up, row });
    }
  }
  const rows = entries.map((e) => {
    const s = e.status;
    const via = seenBy.get(e.node);
    const upstream = s?.upstream ? `${s.upstream.host ?? '-'}:${s.upstream.port ?? '-'}` : '-';
    const role = !s ? '-' : s.fencedTo ? `${s.role} (fenced)` : s.role;
    const state = !s ? (e.error ?? 'unknown') : via ? via.row.state : s.role === 'primary' ? 'running' : (s.upstream?.status ?? 'not connected');
    const lag = via?.row.replayLagBytes != null ? formatLag(via.row.replayLagBytes) : s?.role === 'standby' ? 'unknown' : '';
    const sync = via && via.row.sync !== 'async' ? via.row.sync : '';
    return {
      name: e.name,
      parent: via ? via.up.name : null,
      cells: [role, s ? String(s.timeline) : '?', state, lag, sync, s?.role === 'standby' ? upstream : ''],
    };
  });
  const table = treeLines({ head: ['Node', 'Role', 'TL', 'State', 'Lag', 'Sync', 'Upstream'], rightAligned: [2, 4], rows });
  return `${table.join('\n')}\n`;
}

function entriesFrom(text: string): TopologyEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UserError('pgrepl topology reads a JSON array on stdin: [{"name": ..., "node": ..., "status": <pgrepl status --json>}, ...]; it got something else');
  }
  const ok = Array.isArray(v) && v.every((e) => e && typeof e === 'object' && typeof e.name === 'string' && typeof e.node === 'string');
  if (!ok) throw new UserError('pgrepl topology reads a JSON array of {"name", "node", "status" or "error"} on stdin; an entry lacks its name or node');
  return v as TopologyEntry[];
}

const USAGE = COMMAND_HELP.topology.usage;

export const topology: Command = {
  async run(args) {
    parseArgs(args, {}, USAGE);
    process.stdout.write(topologyTable(entriesFrom(readFileSync(0, 'utf8'))));
    return 0;
  },
};
