/**
 * Routes and interface sysctls for 1,000 local workloads, as the agent's cold start programs
 * them: 2,000 routes (a /32 and a /128 per workload, on its own veth) plus 32 block blackholes,
 * and 7 sysctls per interface plus the 2 global ones, in a scratch namespace. The new path
 * (rtnetlink + /proc/sys through koffi) against the fallback (`ip -batch`, `sysctl -w`) in the
 * same run, rounds interleaved; then one workload added incrementally. Medians of the rounds.
 *
 * BENCH_ROUTES_WORKLOADS (default 1000), BENCH_ROUTES_ROUNDS (default 5).
 */
import { globalSysctls, interfaceSysctls, SysctlLinkManager, writeSysctls } from "../src/dataplane/links.js";
import { run, runOk } from "../src/dataplane/netns.js";
import { loadLibc } from "../src/dataplane/nft/netlink-elements.js";
import { DEFAULT_ROUTE_PROTOCOL, RouteManager, type KernelRoute } from "../src/dataplane/routes.js";
import { machineInfo, writeReport, type BenchRow } from "./report.js";

const N = Number(process.env.BENCH_ROUTES_WORKLOADS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUTES_ROUNDS ?? 5);
const INCREMENTAL = 20;
const NS = `ctsbr-${process.pid}`;
const PROTO = DEFAULT_ROUTE_PROTOCOL;
if (!(N >= 1 && N <= 1024 && ROUNDS >= 1 && ROUNDS <= 20))
  throw new Error(
    `BENCH_ROUTES_WORKLOADS must be 1..1024 and BENCH_ROUTES_ROUNDS 1..20 (got ${N}, ${ROUNDS})`,
  );

const iface = (i: number) => `cali${String(i).padStart(11, "0")}`;
const v4 = (i: number) => `198.19.${i >> 8}.${i & 255}/32`;
const v6 = (i: number) => `fd00:19:0:1::${i.toString(16)}/128`;

/** The desired routes of workloads `ids` (one /26 and one /122 blackhole per 64 addresses). */
function desired(ids: readonly number[]): Map<string, KernelRoute> {
  const out = new Map<string, KernelRoute>();
  for (const i of ids) {
    out.set(v4(i), { dst: v4(i), type: "unicast", dev: iface(i) });
    out.set(v6(i), { dst: v6(i), type: "unicast", dev: iface(i) });
  }
  for (let b = 0; b < Math.ceil(N / 64); b++) {
    const v4b = `198.19.${(b * 64) >> 8}.${(b * 64) & 255}/26`;
    const v6b = `fd00:19:0:1::${(b * 64).toString(16)}/122`;
    out.set(v4b, { dst: v4b, type: "blackhole" });
    out.set(v6b, { dst: v6b, type: "blackhole" });
  }
  return out;
}

/** A fresh interface's values: what a cold start finds and must change. */
const kernelDefault = (w: string) =>
  w
    .replace(/=1$/, "=0")
    .replace(/(accept_ra|accept_dad)=0$/, "$1=1")
    .replace(/proxy_delay=0$/, "proxy_delay=80");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

async function main(): Promise<void> {
  const libc = await loadLibc();
  if (libc === undefined) throw new Error("koffi does not load: the new path cannot be measured");
  const ids = Array.from({ length: N }, (_, i) => i);
  const all = desired(ids);
  const ifaces = new Set(ids.map(iface));
  const defaults = [...globalSysctls(true), ...ids.flatMap((i) => interfaceSysctls(iface(i), true))].map(
    kernelDefault,
  );

  await runOk("ip", ["netns", "add", NS]);
  try {
    const t0 = performance.now();
    const lines = ["link set lo up"];
    for (const i of ids) lines.push(`link add ${iface(i)} type veth peer name p${i}`);
    for (const i of ids) lines.push(`link set ${iface(i)} up`, `link set p${i} up`);
    await runOk("ip", ["-n", NS, "-batch", "-"], { input: lines.join("\n") + "\n", timeoutMs: 120_000 });
    console.log(`${N} veth pairs in ${NS}: ${Math.round(performance.now() - t0)} ms (one ip -batch)`);

    const cold: Record<"netlink" | "ip", { routes: number[]; links: number[]; both: number[] }> = {
      netlink: { routes: [], links: [], both: [] },
      ip: { routes: [], links: [], both: [] },
    };
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved, alternating which goes first: the machine's load drifts.
      for (const via of r % 2 === 0 ? (["netlink", "ip"] as const) : (["ip", "netlink"] as const)) {
        await runOk("ip", ["-n", NS, "route", "flush", "proto", String(PROTO)]);
        await runOk("ip", ["-n", NS, "-6", "route", "flush", "proto", String(PROTO)]);
        writeSysctls(libc, NS, defaults);
        // A cold start: fresh managers (no belief), full applies, each timed alone ...
        const routes = new RouteManager(PROTO, { netns: NS, via });
        const links = new SysctlLinkManager({ netns: NS, via: via === "ip" ? "sysctl" : "netlink" });
        let changed = 0;
        cold[via].routes.push(await ms(async () => (changed = await routes.apply(all, true, true))));
        if (changed !== all.size) throw new Error(`${via}: ${changed} routes written, want ${all.size}`);
        cold[via].links.push(await ms(async () => (changed = await links.apply(ifaces, true, true))));
        if (changed !== N) throw new Error(`${via}: ${changed} interfaces configured, want ${N}`);
        // ... and both together from scratch, as LinuxDataplane runs them (concurrently).
        await runOk("ip", ["-n", NS, "route", "flush", "proto", String(PROTO)]);
        await runOk("ip", ["-n", NS, "-6", "route", "flush", "proto", String(PROTO)]);
        writeSysctls(libc, NS, defaults);
        const r2 = new RouteManager(PROTO, { netns: NS, via });
        const l2 = new SysctlLinkManager({ netns: NS, via: via === "ip" ? "sysctl" : "netlink" });
        cold[via].both.push(
          await ms(() => Promise.all([r2.apply(all, true, true), l2.apply(ifaces, true, true)])),
        );
      }
    }
    const check = (await runOk("ip", ["-n", NS, "-6", "route", "show", "proto", String(PROTO)]))
      .trim()
      .split("\n");
    if (check.length !== N + Math.ceil(N / 64)) throw new Error(`${check.length} v6 routes in the kernel`);

    // Incremental: workload k appears (2 routes, 1 interface) on a warm manager.
    const inc: Record<"netlink" | "ip", number[]> = { netlink: [], ip: [] };
    for (const via of ["netlink", "ip"] as const) {
      const routes = new RouteManager(PROTO, { netns: NS, via });
      const links = new SysctlLinkManager({ netns: NS, via: via === "ip" ? "sysctl" : "netlink" });
      for (let j = 0; j < INCREMENTAL; j++) {
        const k = (j * 37) % N;
        const without = ids.filter((i) => i !== k);
        await routes.apply(desired(without), true, j === 0);
        await links.apply(new Set(without.map(iface)), true, j === 0);
        writeSysctls(libc, NS, interfaceSysctls(iface(k), true).map(kernelDefault));
        inc[via].push(
          await ms(() => Promise.all([routes.apply(all, true, false), links.apply(ifaces, true, false)])),
        );
      }
    }

    const row = (name: string, nl: number[], ip: number[], note: string): BenchRow => ({
      name,
      value: median(nl),
      unit: "ms",
      baseline: median(ip),
      ratio: median(nl) / median(ip),
      note,
    });
    const rows: BenchRow[] = [
      row(
        "cold: routes (full apply)",
        cold.netlink.routes,
        cold.ip.routes,
        `${all.size} routes; baseline ip -j show + ip -batch`,
      ),
      row(
        "cold: sysctls (full apply)",
        cold.netlink.links,
        cold.ip.links,
        `${N} interfaces x 7 + 2; baseline ip -j link + sysctl -w`,
      ),
      row(
        "cold: routes + sysctls concurrently",
        cold.netlink.both,
        cold.ip.both,
        "as LinuxDataplane runs them",
      ),
      row("one workload added (2 routes, 7 sysctls)", inc.netlink, inc.ip, `median of ${INCREMENTAL}`),
    ];
    writeReport({
      bench: "dataplane-routes",
      startedAt: new Date().toISOString(),
      machine: machineInfo(),
      params: {
        workloads: N,
        routes: all.size,
        rounds: ROUNDS,
        incremental: INCREMENTAL,
        samples: { cold, inc },
      },
      rows,
    });
  } finally {
    await run("ip", ["netns", "del", NS]);
  }
}

await main();
