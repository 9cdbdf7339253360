/**
 * The plugins' log: stdout belongs to the result JSON (CNI spec 1.1.0, "Result"), so log lines
 * go to stderr and, when `log_file_path` is set, are appended to that file as well.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { LogLevel } from "./config.js";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

export class CniLog {
  constructor(
    private readonly plugin: string,
    private readonly level: LogLevel = "warning",
    private readonly file?: string,
    private readonly context: string = "",
  ) {}

  /** A logger that prefixes every line with the container ID. */
  withContext(level: LogLevel, file: string | undefined, context: string): CniLog {
    return new CniLog(this.plugin, level, file, context);
  }

  debug(msg: string): void {
    this.write("debug", msg);
  }
  info(msg: string): void {
    this.write("info", msg);
  }
  warn(msg: string): void {
    this.write("warning", msg);
  }
  error(msg: string): void {
    this.write("error", msg);
  }
  /** At debug level: where the run is, in ms since the process started (start-up included). */
  phase(label: string): void {
    if (RANK[this.level] > RANK.debug) return;
    this.write("debug", `${label} at ${performance.now().toFixed(1)} ms`);
  }

  private write(level: LogLevel, msg: string): void {
    if (RANK[level] < RANK[this.level]) return;
    const line = `${new Date().toISOString()} [${level.toUpperCase()}] ${this.plugin}${this.context ? ` ${this.context}` : ""}: ${msg}\n`;
    process.stderr.write(line);
    if (this.file === undefined) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      appendFileSync(this.file, line);
    } catch {
      // A log file we cannot write must not fail the operation; stderr has the line.
    }
  }
}
