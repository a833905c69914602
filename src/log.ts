/**
 * The one logger. pino, writing synchronously to stderr: an asynchronous logger loses its last
 * lines when the process is replaced by postgres (execve), and stdout must stay clean for
 * commands run as given (`IMAGE bash -c 'echo hi'` prints exactly `hi`).
 *
 * `pretty` is a small formatter of our own: pino transports run in worker threads that do not
 * survive bundling.
 */
import pino, { type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type { Logger };

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL',
};

/** Renders pino's JSON lines as `time LEVEL message key=value ...`. */
function prettyStream(fd: number): { write(line: string): void } {
  const dest = pino.destination({ fd, sync: true });
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        dest.write(line);
        return;
      }
      const { level, time, msg, pid: _pid, hostname: _host, name: _name, ...rest } = rec;
      const extras = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const when = new Date(Number(time)).toISOString();
      dest.write(`${when} ${LEVEL_NAMES[Number(level)] ?? level} ${String(msg ?? '')}${extras ? ' ' + extras : ''}\n`);
    },
  };
}

export function createLogger(opts: { format?: LogFormat; debug?: boolean; fd?: number } = {}): Logger {
  const fd = opts.fd ?? 2;
  const stream = opts.format === 'pretty' ? prettyStream(fd) : pino.destination({ fd, sync: true });
  return pino(
    {
      name: 'pgrepl',
      level: opts.debug ? 'debug' : 'info',
      base: { pid: process.pid },
      // Belt and braces: no code path logs these, and if one ever did they would be hidden.
      redact: { paths: ['password', 'token', '*.password', '*.token', 'env'], censor: '[secret]' },
    },
    stream,
  );
}

/** The logger every module uses; main() sets its format and level once they are known. */
export let log: Logger = createLogger();
/** The format `log` writes in (its level is its own). */
let logFormat: LogFormat = 'json';

/**
 * `log` with this format and level: the same logger with its level changed when only the level
 * differs (each new pino logger costs a start about a millisecond), a new one otherwise.
 */
export function useLogSettings(opts: { format: LogFormat; debug: boolean }): void {
  if (opts.format === logFormat) {
    log.level = opts.debug ? 'debug' : 'info';
    return;
  }
  log = createLogger(opts);
  logFormat = opts.format;
}
