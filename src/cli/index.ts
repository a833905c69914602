/**
 * The operator commands: `pgrepl <command> [--help]`. A command's code is loaded only when it
 * runs, so each pays for its own imports alone: archive-wal, PostgreSQL's archive_command, runs
 * once per WAL segment and must not load the entrypoint, the HA agent or a SQL client.
 */
import type { Command } from './args.js';
import { commandUsage, type CommandName } from './help.js';

const LOAD: Record<CommandName, () => Promise<Command>> = {
  status: async () => (await import('./status.js')).status,
  promote: async () => (await import('./promote.js')).promote,
  follow: async () => (await import('./follow.js')).follow,
  health: async () => (await import('./health.js')).health,
  'archive-wal': async () => (await import('./archive-wal.js')).archiveWalCommand,
  'restore-wal': async () => (await import('./restore-wal.js')).restoreWalCommand,
  list: async () => (await import('./ha.js')).list,
  pause: async () => (await import('./ha.js')).pause,
  resume: async () => (await import('./ha.js')).resume,
  history: async () => (await import('./ha.js')).history,
  switchover: async () => (await import('./ha.js')).switchover,
  failover: async () => (await import('./ha.js')).failover,
  topology: async () => (await import('./topology.js')).topology,
};

export async function runCommand(name: CommandName, args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(commandUsage(name));
    return 0;
  }
  return (await LOAD[name]()).run(args);
}
