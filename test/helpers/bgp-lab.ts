/**
 * A BGP lab of network namespaces on one bridge: a fabric namespace holding a bridge, and one
 * namespace per node with `eth0` (198.18.0.<i+1>/24, fd00::<i+1>/64) plugged into it, plus
 * loopback addresses for traffic tests. Everything is named with a per-run tag and removed by
 * `destroy()` (also after partial creation).
 */
import { execFileSync } from "node:child_process";

export interface LabNode {
  ns: string;
  /** 198.18.0.<index+1> */
  v4: string;
  /** fd00::<index+1> */
  v6: string;
}

const ip = (args: string[]) =>
  execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

export class BridgeLab {
  readonly fabric: string;
  readonly nodes: LabNode[] = [];
  readonly #created: string[] = [];

  /** `tag` is short (it goes into namespace and interface names), e.g. `rr${process.pid}`. */
  constructor(
    readonly tag: string,
    count: number,
    opts: { ipv6?: boolean } = {},
  ) {
    this.fabric = `${tag}-fab`;
    try {
      this.#ns(this.fabric);
      ip(["-n", this.fabric, "link", "add", "br0", "type", "bridge"]);
      ip(["-n", this.fabric, "link", "set", "br0", "up"]);
      for (let i = 0; i < count; i++) {
        const node: LabNode = {
          ns: `${tag}-n${i}`,
          v4: `198.18.0.${i + 1}`,
          v6: `fd00::${(i + 1).toString(16)}`,
        };
        this.#ns(node.ns);
        const port = `p${i}`;
        ip([
          "link",
          "add",
          "eth0",
          "netns",
          node.ns,
          "type",
          "veth",
          "peer",
          "name",
          port,
          "netns",
          this.fabric,
        ]);
        ip(["-n", this.fabric, "link", "set", port, "master", "br0", "up"]);
        ip(["-n", node.ns, "link", "set", "lo", "up"]);
        ip(["-n", node.ns, "addr", "add", `${node.v4}/24`, "dev", "eth0"]);
        if (opts.ipv6) ip(["-n", node.ns, "addr", "add", `${node.v6}/64`, "dev", "eth0", "nodad"]);
        ip(["-n", node.ns, "link", "set", "eth0", "up"]);
        this.nodes.push(node);
      }
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  #ns(name: string): void {
    ip(["netns", "add", name]);
    this.#created.push(name);
  }

  node(i: number): LabNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`lab ${this.tag}: no node ${i}`);
    return n;
  }

  /** Add an address to a node's loopback (e.g. 198.19.2.1/32), for traffic tests. */
  addLoopback(i: number, cidr: string): void {
    ip(["-n", this.node(i).ns, "addr", "add", cidr, "dev", "lo"]);
  }

  /** `ip route show <prefix>` in a node's namespace. */
  routes(i: number, prefix: string): string {
    return ip(["-n", this.node(i).ns, prefix.includes(":") ? "-6" : "-4", "route", "show", prefix]).trim();
  }

  /** Delete every namespace created (their veths go with them). */
  destroy(): void {
    for (const ns of this.#created.splice(0).reverse()) {
      try {
        ip(["netns", "del", ns]);
      } catch {
        /* already gone */
      }
    }
  }
}
