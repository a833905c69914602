/**
 * Each operator command's usage line and one-line summary, apart from its code: `pgrepl help`
 * and `pgrepl COMMAND --help` print them without loading any command (cli/index.ts loads a
 * command only to run it), and each command's usage errors quote the same line.
 */
export const COMMAND_HELP = {
  status: { usage: 'pgrepl status [--json]', summary: "this node's role, timeline, upstream and lag; its standbys and slots" },
  promote: { usage: 'pgrepl promote [--json]', summary: 'promote this standby; returns when it accepts writes and prints the new timeline' },
  follow: { usage: 'pgrepl follow HOST[:PORT] [--json]', summary: 'point this standby at another upstream, without re-cloning; kept across restarts' },
  health: { usage: 'pgrepl health [--primary|--standby] [--max-lag BYTES]', summary: 'exit 0 healthy, 1 unhealthy, 2 still starting (waiting, cloning, recovering)' },
  'archive-wal': { usage: 'pgrepl archive-wal [--dir DIR] WALPATH WALNAME', summary: 'archive_command (%p %f): copy a WAL file into the archive, atomically, never over a different one' },
  'restore-wal': { usage: 'pgrepl restore-wal [--dir DIR] WALNAME DESTPATH', summary: 'restore_command (%f %p): copy a WAL file from the archive; exit 1 if it has none' },
  list: { usage: 'pgrepl list [--json]', summary: 'HA mode: the cluster as etcd shows it: leader, members, roles, timelines, lag' },
  pause: { usage: 'pgrepl pause', summary: 'HA mode: no automatic failover, promotion or switchover until `pgrepl resume`' },
  resume: { usage: 'pgrepl resume', summary: 'HA mode: end a pause: automatic failover, promotion and switchover again' },
  history: { usage: 'pgrepl history [--json]', summary: "HA mode: the cluster's promotions, oldest first: timeline, LSN, leader, when, why" },
  switchover: {
    usage: 'pgrepl switchover [--to NODE] [--wait SECONDS]',
    summary: 'HA mode: hand the lead to another member (--to NODE, or the best one) without losing a commit; returns once it accepts writes',
  },
  failover: {
    usage: 'pgrepl failover --to NODE [--wait SECONDS]',
    summary: 'HA mode, no leader: make NODE the leader (may lose data: says how much first); returns once it accepts writes',
  },
  topology: { usage: 'pgrepl topology < statuses.json', summary: "draw a cluster (not HA) as a tree from its nodes' pgrepl status --json (docker/status.sh)" },
} as const satisfies Record<string, { usage: string; summary: string }>;

export type CommandName = keyof typeof COMMAND_HELP;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_HELP, name);
}

/** `pgrepl COMMAND --help`: its usage line and what it does. */
export function commandUsage(name: CommandName): string {
  return `usage: ${COMMAND_HELP[name].usage}\n${COMMAND_HELP[name].summary}\n`;
}

/** The list in `pgrepl help`: one line per command. */
export function commandList(): string {
  return Object.values(COMMAND_HELP)
    .map((c) => `  ${c.usage.padEnd(52)} ${c.summary}`)
    .join('\n');
}
