/**
 * Structured logs for the node agent: one JSON object per line on stderr, filtered at
 * FelixConfiguration `logSeverityScreen` (Felix's levels: Trace, Debug, Info, Warning, Error,
 * Fatal). The level can change while running (a FelixConfiguration update).
 */

export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger adding `fields` (e.g. `{component: "syncer"}`) to every line; shares the level. */
  child(fields: LogFields): Logger;
  setLevel(level: LogLevel): void;
}

/** `Warning`, `warn`, `INFO` → the level; undefined for anything else. */
export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase();
  if (t === "warn") return "warning";
  if (t === "panic") return "fatal";
  return (LOG_LEVELS as readonly string[]).includes(t) ? (t as LogLevel) : undefined;
}

interface Shared {
  level: number;
  write: (line: string) => void;
}

class JsonLogger implements Logger {
  constructor(
    private readonly shared: Shared,
    private readonly base: LogFields,
  ) {}

  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LOG_LEVELS.indexOf(level) < this.shared.level) return;
    const line: LogFields = { time: new Date().toISOString(), level, msg, ...this.base };
    for (const [k, v] of Object.entries(fields ?? {})) {
      line[k] = v instanceof Error ? v.message : v;
    }
    this.shared.write(JSON.stringify(line));
  }

  trace(msg: string, fields?: LogFields): void {
    this.log("trace", msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warning", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.shared, { ...this.base, ...fields });
  }
  setLevel(level: LogLevel): void {
    this.shared.level = LOG_LEVELS.indexOf(level);
  }
}

export function createLogger(
  opts: { level?: LogLevel; write?: (line: string) => void; fields?: LogFields } = {},
): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return new JsonLogger({ level: LOG_LEVELS.indexOf(opts.level ?? "info"), write }, opts.fields ?? {});
}

/** A logger that drops everything (tests). */
export const nullLogger = (): Logger => createLogger({ write: () => {} });
