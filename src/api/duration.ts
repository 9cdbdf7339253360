/**
 * Go `time.Duration` text ("90s", "1m30s", "1.5h", "250ms"), as Kubernetes `metav1.Duration`
 * fields carry it in Calico's configuration resources. Parsed to milliseconds (a float, so
 * "1.5us" survives), formatted back the way Go prints it.
 */
import { join, type Issues } from "./check.js";

// Go's unit table (time/format.go); "µs" and "μs" (U+00B5, U+03BC) both mean microseconds.
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/** Milliseconds for a Go duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest.startsWith("-")) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  while (rest !== "") {
    const m = PART.exec(rest);
    if (m === null) return undefined;
    const [whole, num, unit] = m as unknown as [string, string, string];
    total += Number(num) * (UNIT_MS[unit] ?? NaN);
    rest = rest.slice(whole.length);
  }
  return Number.isFinite(total) ? sign * total : undefined;
}

/** Go's `Duration.String()` for a whole number of milliseconds or more ("1m30s", "1h0m0s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const neg = ms < 0;
  let v = Math.abs(ms);
  let out: string;
  if (v < 1000) {
    out = `${trim(v)}ms`;
  } else {
    const h = Math.floor(v / 3_600_000);
    v -= h * 3_600_000;
    const m = Math.floor(v / 60_000);
    v -= m * 60_000;
    const s = `${trim(v / 1000)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

const trim = (n: number): string => String(Number(n.toFixed(9)));

export const DURATION_HINT = 'a duration such as "90s", "1m30s" or "250ms"';

/** Check a duration-valued field (a string in Go syntax); returns milliseconds. */
export function checkDuration(
  obj: Record<string, unknown>,
  field: string,
  path: string,
  issues: Issues,
  opt: { min?: number } = { min: 0 },
): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  const p = join(path, field);
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  if (ms === undefined) {
    issues.add(p, `must be ${DURATION_HINT}`, v);
    return undefined;
  }
  if (opt.min !== undefined && ms < opt.min) {
    issues.add(p, opt.min === 0 ? "must not be negative" : `must be at least ${formatDuration(opt.min)}`, v);
    return undefined;
  }
  return ms;
}
