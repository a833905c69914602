/** The operator commands: `pgrepl <command> [--help]`. */
import { archiveWalCommand } from './archive-wal.js';
import { follow } from './follow.js';
import { failover, history, list, pause, resume, switchover } from './ha.js';
import { health } from './health.js';
import type { Command } from './local.js';
import { promote } from './promote.js';
import { restoreWalCommand } from './restore-wal.js';
import { status } from './status.js';
import { topology } from './topology.js';

export const COMMANDS: Record<string, Command> = {
  status, promote, follow, health, 'archive-wal': archiveWalCommand, 'restore-wal': restoreWalCommand,
  list, pause, resume, history, switchover, failover, topology,
};

export function commandHelp(): string {
  return Object.entries(COMMANDS)
    .map(([name, c]) => `  ${c.usage.padEnd(52)} ${c.summary}`)
    .join('\n');
}

export async function runCommand(name: string, args: string[]): Promise<number> {
  const cmd = COMMANDS[name]!;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`usage: ${cmd.usage}\n${cmd.summary}\n`);
    return 0;
  }
  return cmd.run(args);
}
