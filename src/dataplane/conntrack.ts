/**
 * Felix's conntrack clean-up for removed workloads: when an address stops belonging to a local
 * workload endpoint (the endpoint deleted, or its addresses changed), the flows it was part of
 * are deleted (`conntrack -D --orig-src`, `--orig-dst`, `--reply-src`). Otherwise a new
 * workload given the same address would inherit them: an established flow is accepted without
 * a policy check (the forward hook's fast path, and every endpoint chain's first rule), so a
 * stale entry would carry an old peer's packets past the new workload's policy.
 *
 * The first apply only records the addresses (flows of workloads that went while the agent
 * was down are not known). A failure (no `conntrack` binary, say) is reported, never thrown:
 * policy is still enforced for every new flow.
 */
import { formatIP, familyBits } from "../api/net.js";
import type { DesiredState } from "../calc/types.js";
import { run as runCommand, type RunResult } from "./netns.js";

export interface ConntrackApplier {
  /** The local workload addresses now; removes the flows of those that went since the last call. */
  apply(addrs: ReadonlySet<string>): Promise<ConntrackResult>;
}

export interface ConntrackResult {
  /** Addresses whose flows were deleted. */
  removed: string[];
  /** What could not be done, one line each. */
  errors: string[];
}

/** The full-length addresses (/32, /128) of the local workload endpoints in `state`. */
export function localWorkloadAddrs(state: DesiredState): Set<string> {
  const out = new Set<string>();
  for (const ep of state.endpoints.values()) {
    if (ep.kind !== "workload") continue;
    for (const c of [...ep.ipv4Nets, ...ep.ipv6Nets])
      if (c.prefix === familyBits(c.family)) out.add(formatIP(c.family, c.addr));
  }
  return out;
}

const DIRECTIONS = ["--orig-src", "--orig-dst", "--reply-src"] as const;

export class ConntrackCleaner implements ConntrackApplier {
  private last: Set<string> | undefined;
  private readonly netns: string | undefined;
  private readonly run: typeof runCommand;

  constructor(opts: { netns?: string | undefined; run?: typeof runCommand } = {}) {
    this.netns = opts.netns;
    this.run = opts.run ?? runCommand;
  }

  async apply(addrs: ReadonlySet<string>): Promise<ConntrackResult> {
    const before = this.last;
    this.last = new Set(addrs);
    const res: ConntrackResult = { removed: [], errors: [] };
    if (before === undefined) return res;
    for (const a of before) {
      if (addrs.has(a)) continue;
      const family = a.includes(":") ? "ipv6" : "ipv4";
      let ok = true;
      for (const dir of DIRECTIONS) {
        let r: RunResult;
        try {
          r = await this.run("conntrack", ["-D", dir, a, "-f", family], { netns: this.netns });
        } catch (e) {
          r = { code: -1, stdout: "", stderr: (e as Error).message };
        }
        // `conntrack -D` exits 1 when it found nothing to delete.
        if (r.code === 0 || (r.code === 1 && /\b0 flow entries have been deleted/.test(r.stderr))) continue;
        res.errors.push(
          `Cannot delete the flows of ${a} (conntrack -D ${dir}): ${r.stderr.trim() || `exit ${r.code}`}`,
        );
        ok = false;
        break;
      }
      if (ok) res.removed.push(a);
    }
    return res;
  }
}
