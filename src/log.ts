/**
 * The one logger: one JSON line per record on stderr, written synchronously: an asynchronous
 * logger loses its last lines when the process is replaced by postgres (execve), and stdout must
 * stay clean for commands run as given (`IMAGE bash -c 'echo hi'` prints exactly `hi`).
 *
 * The lines are pino's ({"level":30,"time":...,"pid":...,"name":"pgrepl",...fields,"msg":...}),
 * written by these few lines instead of pino itself: loading pino (sonic-boom, its serializers,
 * redaction, thread-stream) took a restart's start-up more time than all of its own work before
 * postgres. `pretty` renders the same record as `time LEVEL message key=value ...`.
 */
import { writeSync } from 'node:fs';

export type LogFormat = 'json' | 'pretty';

type Fields = Record<string, unknown>;

interface LogFn {
  (msg: string): void;
  (fields: Fields, msg?: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Belt and braces: no code path logs these, and if one ever did they would be hidden. */
const SECRET_KEYS = new Set(['password', 'token']);
const SECRET = '[secret]';

/** Fields named password or token (at the top or one level down) and `env` are replaced by [secret]. */
function redact(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_KEYS.has(k) || k === 'env') out[k] = SECRET;
    else if (v !== null && typeof v === 'object' && !(v instanceof Error) && Object.keys(v).some((n) => SECRET_KEYS.has(n))) {
      out[k] = Object.fromEntries(Object.entries(v).map(([n, x]) => [n, SECRET_KEYS.has(n) ? SECRET : x]));
    } else out[k] = v;
  }
  return out;
}

/** An error as pino shows it: its type, message and stack, then its own fields (code, path, ...). */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Fields = { type: err.constructor?.name ?? err.name, message: err.message, stack: err.stack };
  for (const [k, v] of Object.entries(err)) if (!(k in out)) out[k] = v instanceof Error ? serializeError(v) : v;
  return out;
}

/** Waits `ms` without giving up the thread: a full pipe (EAGAIN) must not drop a line, nor reorder it. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function writeLine(fd: number, line: string): void {
  let buf = Buffer.from(line);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      sleepSync(1);
    }
  }
}

/** JSON.stringify, and for what it cannot write (a bigint, a cycle), a line all the same. */
function stringify(rec: Fields): string {
  try {
    return JSON.stringify(rec);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(rec, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v !== null && typeof v === 'object') {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    });
  }
}

/** Renders a record as `time LEVEL message key=value ...`. */
function pretty(rec: Fields): string {
  const { level, time, msg, pid: _pid, name: _name, ...rest } = rec;
  const extras = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${new Date(Number(time)).toISOString()} ${LEVEL_NAMES[Number(level)] ?? level} ${String(msg ?? '')}${extras ? ' ' + extras : ''}\n`;
}

export function createLogger(opts: { format?: LogFormat; debug?: boolean; fd?: number } = {}): Logger {
  const fd = opts.fd ?? 2;
  const min = opts.debug ? LEVELS.debug : LEVELS.info;
  const method = (level: number): LogFn =>
    ((first: string | Fields, second?: string) => {
      if (level < min) return;
      const fields = typeof first === 'string' ? {} : redact(first);
      const msg = typeof first === 'string' ? first : second;
      if (fields.err !== undefined) fields.err = serializeError(fields.err);
      const rec: Fields = { level, time: Date.now(), pid: process.pid, name: 'pgrepl', ...fields };
      if (msg !== undefined) rec.msg = msg;
      const line = stringify(rec);
      // pretty renders the JSON record (as it was parsed back from pino's line): the same values.
      writeLine(fd, opts.format === 'pretty' ? pretty(JSON.parse(line) as Fields) : line + '\n');
    }) as LogFn;
  return {
    trace: method(LEVELS.trace), debug: method(LEVELS.debug), info: method(LEVELS.info),
    warn: method(LEVELS.warn), error: method(LEVELS.error), fatal: method(LEVELS.fatal),
  };
}

/** The logger every module uses; main() replaces it once the configuration is known. */
export let log: Logger = createLogger();

export function setLogger(logger: Logger): void {
  log = logger;
}
