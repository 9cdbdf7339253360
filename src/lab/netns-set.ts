/**
 * Network namespaces a test or the lab creates, under one per-run name prefix, and removed
 * together (also what an earlier crashed run with the same prefix left). Every process
 * still inside one of them is killed before the namespace is deleted.
 */
import { readdirSync } from "node:fs";
import { run, runOk } from "../dataplane/netns.js";

/** A short prefix unique to this process and call, e.g. `cts12345a-`. */
export function runPrefix(tag = "cts"): string {
  counter++;
  return `${tag}${process.pid.toString(36)}${counter.toString(36)}-`;
}
let counter = 0;

export function listNetns(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

export class NetnsSet {
  private readonly names: string[] = [];

  constructor(readonly prefix: string) {}

  /**
   * Create `<prefix><name>` with loopback up and IPv6 duplicate address detection off for
   * interfaces made later (otherwise the first IPv6 packets fail for ~2 s while link-local
   * addresses are tentative; reference/lab-recipes.md §1). Returns the full name.
   */
  async add(name: string): Promise<string> {
    const full = `${this.prefix}${name}`;
    await runOk("ip", ["netns", "add", full]);
    this.names.push(full);
    await runOk("ip", ["-n", full, "link", "set", "lo", "up"]);
    await this.sysctl(full, { "net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0" });
    return full;
  }

  /** Set sysctls in a namespace, e.g. `{ "net.ipv4.ip_forward": "1" }`. */
  async sysctl(netns: string, values: Record<string, string>): Promise<void> {
    const args = Object.entries(values).flatMap(([k, v]) => ["-w", `${k}=${v}`]);
    await runOk("sysctl", ["-q", ...args], { netns });
  }

  /** Kill what runs inside, then delete every namespace with this prefix. Never throws. */
  async cleanup(): Promise<void> {
    const all = new Set([...this.names, ...listNetns().filter((n) => n.startsWith(this.prefix))]);
    for (const ns of all) {
      const pids = await run("ip", ["netns", "pids", ns]);
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
      await run("ip", ["netns", "del", ns]);
    }
    this.names.length = 0;
  }
}
