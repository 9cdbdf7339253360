/**
 * `calicoctl ipam show | check | release | configure` (reference/calico.md §8, §4) over the
 * IPAM library (`src/ipam`), laid out as Calico's calicoctl prints them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { cidrContains, familyBits, formatCIDR, formatIP, parseIP, type CIDR } from "../../api/net.js";
import { API_VERSION, type AnyResource } from "../../api/resource.js";
import { isResourceExists, isResourceNotFound, type ResourceStore } from "../../datastore/resources.js";
import { CalicoError } from "../../errors.js";
import {
  AllocationState,
  blockPrefix,
  checkIPAM,
  classifyAllocations,
  inUseCount,
  IPAM,
  parseBlock,
  type Block,
} from "../../ipam/index.js";
import { renderBoxed } from "../boxed-table.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../usage-error.js";
import { newReport, parseReport, type IPAMReport, type ReportedAddress } from "./ipam-report.js";

/** A refusal or a finding that makes the command exit 1 (ExitCode.FAILED) after its output. */
export class IpamCommandError extends CalicoError {
  constructor(
    code: "CLI_IPAM_PROBLEMS" | "CLI_IPAM_NOT_ASSIGNED" | "CLI_IPAM_RELEASE_REFUSED",
    message: string,
  ) {
    super(code, message);
  }
}

const plural = (n: number | bigint, one: string, many = `${one}s`): string =>
  `${n} ${n === 1 || n === 1n ? one : many}`;

/** `n (p%)`, p rounded half-to-even like Go's `%.0f`, exact for IPv6-sized totals. */
export function withPercent(n: bigint, total: bigint): string {
  if (total === 0n) return `${n} (0%)`;
  const scaled = 100n * n;
  let q = scaled / total;
  const r2 = 2n * (scaled % total);
  if (r2 > total || (r2 === total && q % 2n === 1n)) q += 1n;
  return `${n} (${q}%)`;
}

function ipArg(text: string, flag: string): string {
  const ip = parseIP(text);
  if (ip === undefined) throw new UsageError(`${flag}: "${text}" is not an IP address`);
  return formatIP(ip.family, ip.value);
}

async function allBlocks(ipam: IPAM): Promise<Block[]> {
  const out: Block[] = [];
  for (const family of [4, 6] as const) {
    for (const kv of (await ipam.datastore.list(blockPrefix(family))).items) out.push(parseBlock(kv.value));
  }
  return out.sort((a, b) =>
    a.cidr.family !== b.cidr.family ? a.cidr.family - b.cidr.family : a.cidr.addr < b.cidr.addr ? -1 : 1,
  );
}

const hostNode = (affinity: string | null): string =>
  affinity?.startsWith("host:") === true ? affinity.slice("host:".length) : "";

async function clusterInformation(store: ResourceStore): Promise<AnyResource | undefined> {
  try {
    return await store.get("ClusterInformation", "default");
  } catch (e) {
    if (isResourceNotFound(e)) return undefined;
    throw e;
  }
}

/** calicoctl's "locked" datastore: ClusterInformation spec.datastoreReady is false. */
const isLocked = (ci: AnyResource | undefined): boolean => ci?.spec.datastoreReady === false;

// ---- show ------------------------------------------------------------------------------

interface ShowOpts {
  ip?: string;
  showBlocks?: boolean;
  showBorrowed?: boolean;
  showConfiguration?: boolean;
}

async function showIP(ctx: CliContext, ipam: IPAM, address: string): Promise<void> {
  const a = await ipam.getAllocation(address);
  if (a === undefined) {
    ctx.out(`${address} is not assigned`);
    const ip = parseIP(address)!;
    const host: CIDR = { family: ip.family, addr: ip.value, prefix: familyBits(ip.family) };
    if (!(await ipam.pools()).some((p) => cidrContains(p.cidr, host)))
      ctx.out(`${address} is not in any IP pool`);
    return;
  }
  const lines = [`IP ${address} is in use`, `Handle ID: ${a.handleID ?? "(none)"}`, `Block: ${a.block}`];
  const attrs = Object.entries(a.attrs ?? {}).sort(([x], [y]) => x.localeCompare(y));
  if (attrs.length === 0) lines.push("Attributes: (none)");
  else lines.push("Attributes:", ...attrs.map(([k, v]) => `  ${k}: ${v}`));
  ctx.out(lines.join("\n"));
}

async function showUtilisation(ctx: CliContext, ipam: IPAM, withBlocks: boolean): Promise<void> {
  const blocks = await allBlocks(ipam);
  const rows: string[][] = [];
  for (const pool of await ipam.pools()) {
    const total = 1n << BigInt(familyBits(pool.cidr.family) - pool.cidr.prefix);
    const mine = blocks.filter((b) => cidrContains(pool.cidr, b.cidr));
    const used = BigInt(mine.reduce((n, b) => n + inUseCount(b), 0));
    rows.push([
      "IP Pool",
      formatCIDR(pool.cidr),
      `${total}`,
      withPercent(used, total),
      withPercent(total - used, total),
    ]);
    if (!withBlocks) continue;
    for (const b of mine) {
      const size = BigInt(b.allocations.length);
      const bUsed = BigInt(inUseCount(b));
      rows.push([
        "Block",
        formatCIDR(b.cidr),
        `${size}`,
        withPercent(bUsed, size),
        withPercent(size - bUsed, size),
      ]);
    }
  }
  ctx.out(renderBoxed(["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"], rows));
}

async function showBorrowed(ctx: CliContext, ipam: IPAM): Promise<void> {
  const rows: string[][] = [];
  for (const b of await allBlocks(ipam)) {
    const owner = hostNode(b.affinity);
    b.allocations.forEach((ai, o) => {
      if (ai === null) return;
      const attr = b.attributes[ai];
      const s = attr?.secondary ?? {};
      const node = s.node;
      if (node === undefined || node === owner) return;
      const type = s.pod !== undefined ? "pod" : (s.type ?? "");
      const to =
        s.pod !== undefined
          ? `${s.namespace ?? ""}/${s.pod}`
          : s.type !== undefined
            ? node
            : (attr?.handleID ?? "");
      rows.push([
        formatIP(b.cidr.family, b.cidr.addr + BigInt(o)),
        node,
        formatCIDR(b.cidr),
        owner,
        type,
        to,
      ]);
    });
  }
  ctx.out(renderBoxed(["IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER", "TYPE", "ALLOCATED-TO"], rows));
}

async function showConfiguration(ctx: CliContext, store: ResourceStore): Promise<void> {
  let spec: Record<string, unknown> = {};
  try {
    spec = (await store.get("IPAMConfiguration", "default")).spec;
  } catch (e) {
    if (!isResourceNotFound(e)) throw e;
  }
  ctx.out(
    renderBoxed(
      ["PROPERTY", "VALUE"],
      [
        ["StrictAffinity", String(spec.strictAffinity === true)],
        ["AutoAllocateBlocks", String(spec.autoAllocateBlocks !== false)],
        ["MaxBlocksPerHost", String(typeof spec.maxBlocksPerHost === "number" ? spec.maxBlocksPerHost : 0)],
      ],
    ),
  );
}

// ---- check -----------------------------------------------------------------------------

interface CheckOpts {
  showAllIps?: boolean;
  showProblemIps?: boolean;
  output?: string;
}

/** How many problem addresses the default output lists before pointing at --show-problem-ips. */
const PROBLEM_IPS_SHOWN = 10;
const TOP_NODES = 10;

async function check(ctx: CliContext, store: ResourceStore, o: CheckOpts): Promise<void> {
  const ipam = new IPAM(store.datastore);
  // ClusterInformation first: a report must not claim a lock state newer than its scan.
  const ci = await clusterInformation(store);
  const usage = await classifyAllocations(store.datastore);
  const consistency = await checkIPAM(store.datastore);
  const pools = await ipam.pools();

  const perNode = new Map<string, number>();
  for (const a of usage.allocations) {
    const node = a.attrs.node ?? a.blockAffinity ?? "(no node)";
    perNode.set(node, (perNode.get(node) ?? 0) + 1);
  }
  const leaked: ReportedAddress[] = [];
  for (const a of usage.allocations) {
    if (a.state === AllocationState.IN_USE) continue;
    leaked.push({
      address: a.address,
      state: a.state,
      reason: a.reason,
      handleID: a.handleID,
      sequenceNumber: a.sequenceNumber,
      block: a.block,
      node: a.attrs.node ?? a.blockAffinity ?? "",
      attrs: a.attrs,
    });
  }
  const counts = {
    pools: pools.length,
    blocks: consistency.blocks,
    allocations: consistency.allocations,
    handles: consistency.handles,
    affinities: consistency.affinities,
  };

  const out: string[] = ["Checking IPAM for inconsistencies...", ""];
  out.push(
    `Found ${plural(counts.pools, "IP pool")}, ${plural(counts.blocks, "IPAM block")}, ` +
      `${plural(counts.allocations, "allocation")}, ${plural(counts.handles, "handle")}, ` +
      `${plural(counts.affinities, "block affinity", "block affinities")}.`,
  );
  if (ci !== undefined)
    out.push(
      `Datastore ${isLocked(ci) ? "locked" : "not locked"} (datastoreReady=${String(ci.spec.datastoreReady !== false)}).`,
    );
  out.push("");
  const top = [...perNode].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  out.push(`Allocations per node${top.length > TOP_NODES ? ` (top ${TOP_NODES} of ${top.length})` : ""}:`);
  if (top.length === 0) out.push("  (none)");
  const width = Math.max(0, ...top.map(([n]) => n.length));
  for (const [node, n] of top.slice(0, TOP_NODES)) out.push(`  ${node.padEnd(width)}  ${n}`);
  out.push("");

  if (o.showAllIps === true) {
    out.push(`All allocated IPs (${usage.allocations.length}):`);
    for (const a of usage.allocations) {
      out.push(`  ${a.address}  ${a.state}  handle=${a.handleID ?? "(none)"}  ${a.reason}`);
    }
    out.push("");
  }

  out.push(`Consistency problems: ${consistency.issues.length}`);
  for (const i of consistency.issues) out.push(`  [${i.kind}] ${i.message}`);
  out.push("");

  const nLeaked = leaked.filter((l) => l.state === AllocationState.LEAKED).length;
  out.push(
    `IPs allocated but not in use: ${leaked.length}` +
      (leaked.length > 0 ? ` (${nLeaked} leaked, ${plural(leaked.length - nLeaked, "leak candidate")})` : ""),
  );
  const showAll = o.showProblemIps === true || o.showAllIps === true;
  const listed = showAll ? leaked : leaked.slice(0, PROBLEM_IPS_SHOWN);
  const aw = Math.max(0, ...listed.map((l) => l.address.length));
  for (const l of listed) {
    out.push(
      `  ${l.address.padEnd(aw)}  ${l.state.padEnd(14)}  handle=${l.handleID ?? "(none)"}: ${l.reason}`,
    );
  }
  if (listed.length < leaked.length)
    out.push(`  ... and ${leaked.length - listed.length} more (--show-problem-ips lists all)`);
  out.push("");
  out.push(`IPs in use but not allocated: ${usage.inUseNotAllocated.length}`);
  for (const u of usage.inUseNotAllocated)
    out.push(`  ${u.address}  held by WorkloadEndpoint ${u.workloadEndpoint}`);
  out.push("");

  const problems = consistency.issues.length + leaked.length + usage.inUseNotAllocated.length;
  out.push(`Check complete; found ${plural(problems, "problem")}.`);
  ctx.out(out.join("\n"));

  if (o.output !== undefined) {
    const report: IPAMReport = newReport({
      generatedAt: new Date().toISOString(),
      datastoreRevision: usage.revision,
      clusterInformationResourceVersion: ci?.metadata.resourceVersion ?? null,
      datastoreLocked: isLocked(ci),
      counts,
      allocationsPerNode: Object.fromEntries(top),
      problems: consistency.issues,
      leaked,
      inUseNotAllocated: usage.inUseNotAllocated,
    });
    try {
      writeFileSync(o.output, `${JSON.stringify(report, null, 2)}\n`);
    } catch (e) {
      throw new UsageError(
        `Cannot write report "${o.output}": ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    ctx.out(`Report written to ${o.output}.`);
  }
  if (problems > 0)
    throw new IpamCommandError("CLI_IPAM_PROBLEMS", `IPAM check found ${plural(problems, "problem")}`);
}

// ---- release ---------------------------------------------------------------------------

interface ReleaseOpts {
  ip?: string;
  fromReport: string[];
  force?: boolean;
}

async function releaseOne(ctx: CliContext, ipam: IPAM, address: string): Promise<void> {
  const res = await ipam.releaseIPs([address]);
  if (res.released.length === 0) {
    throw new IpamCommandError(
      "CLI_IPAM_NOT_ASSIGNED",
      `IP address ${address} is not assigned; nothing released`,
    );
  }
  ctx.out(`Successfully released IP address ${address}`);
}

function readReports(files: readonly string[]): { file: string; report: IPAMReport }[] {
  // Every report is read and checked before anything is released.
  return files.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`Cannot read report "${file}": ${e instanceof Error ? e.message : String(e)}`);
    }
    return { file, report: parseReport(text, file) };
  });
}

async function releaseFromReports(ctx: CliContext, o: ReleaseOpts): Promise<void> {
  const reports = readReports(o.fromReport);
  const store = await ctx.store();
  const ci = await clusterInformation(store);
  const force = o.force === true;
  if (!isLocked(ci)) {
    if (!force) {
      throw new IpamCommandError(
        "CLI_IPAM_RELEASE_REFUSED",
        'Refusing to release IPs from a report: the datastore is not locked (ClusterInformation "default" spec.datastoreReady is not false), ' +
          "so workloads may be taking addresses the report calls leaked. Run `calicoctl datastore migrate lock`, take the report, " +
          "release, then `calicoctl datastore migrate unlock`; or pass --force.",
      );
    }
    ctx.err("Warning: the datastore is not locked; releasing anyway (--force).");
  }
  const current = ci?.metadata.resourceVersion ?? null;
  for (const { file, report } of reports) {
    if (report.clusterInformationResourceVersion === current) continue;
    const msg =
      `report "${file}" was taken at ClusterInformation resourceVersion ${String(report.clusterInformationResourceVersion)}, ` +
      `the current one is ${String(current)}: the datastore was locked, unlocked or changed since`;
    if (!force)
      throw new IpamCommandError(
        "CLI_IPAM_RELEASE_REFUSED",
        `Refusing to release: ${msg}; take a new report (or pass --force).`,
      );
    ctx.err(`Warning: ${msg}; releasing anyway (--force).`);
  }

  // Only addresses leaked in every report, with the same allocation (sequence number) in each.
  const canonical = (a: string): string => {
    const ip = parseIP(a)!;
    return formatIP(ip.family, ip.value);
  };
  const maps = reports.map(({ report }) => new Map(report.leaked.map((l) => [canonical(l.address), l])));
  const [first, ...rest] = maps;
  const candidates: { address: string; sequenceNumber: number; handleID: string | null }[] = [];
  let notInAll = 0;
  const lines: string[] = [];
  for (const [address, l] of first ?? new Map<string, ReportedAddress>()) {
    const others = rest.map((m) => m.get(address));
    if (others.some((x) => x === undefined)) {
      notInAll++;
      continue;
    }
    if (others.some((x) => x!.sequenceNumber !== l.sequenceNumber)) {
      lines.push(`Skipped ${address}: re-allocated between the reports (sequence numbers differ)`);
      continue;
    }
    candidates.push({ address, sequenceNumber: l.sequenceNumber, handleID: l.handleID });
  }
  const res =
    candidates.length > 0
      ? await new IPAM(store.datastore).releaseIPs(
          candidates.map(({ address, sequenceNumber }) => ({ address, sequenceNumber })),
        )
      : { released: [], notAllocated: [], skipped: [] };
  const handleOf = new Map(candidates.map((c) => [c.address, c.handleID]));
  for (const a of res.released) lines.push(`Released ${a} (handle ${handleOf.get(a) ?? "(none)"})`);
  for (const a of res.skipped)
    lines.push(`Skipped ${a}: re-allocated since the report (sequence number changed)`);
  for (const a of res.notAllocated) lines.push(`${a} is no longer allocated; nothing to release`);
  if (notInAll > 0)
    lines.push(`Left alone ${plural(notInAll, "address", "addresses")} not leaked in every report.`);
  lines.push(
    `Released ${res.released.length} of ${plural(candidates.length, "leaked IP address", "leaked IP addresses")}` +
      ` (${res.skipped.length} skipped, ${res.notAllocated.length} already free).`,
  );
  ctx.out(lines.join("\n"));
}

// ---- configure -------------------------------------------------------------------------

interface ConfigureOpts {
  strictaffinity?: string;
  maxBlocksPerHost?: string;
}

/** Go's strconv.ParseBool, which calicoctl uses for --strictaffinity. */
function parseBool(text: string, flag: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  throw new UsageError(`${flag}: "${text}" is not true or false`);
}

async function configure(ctx: CliContext, o: ConfigureOpts): Promise<void> {
  const change: { strictAffinity?: boolean; maxBlocksPerHost?: number } = {};
  if (o.strictaffinity !== undefined) change.strictAffinity = parseBool(o.strictaffinity, "--strictaffinity");
  if (o.maxBlocksPerHost !== undefined) {
    const t = o.maxBlocksPerHost;
    if (!/^\d+$/.test(t) || Number(t) > 2147483647) {
      throw new UsageError(`--max-blocks-per-host: "${t}" is not a whole number from 0 to 2147483647`);
    }
    change.maxBlocksPerHost = Number(t);
  }
  if (Object.keys(change).length === 0) {
    throw new UsageError("ipam configure: give --strictaffinity=true|false and/or --max-blocks-per-host=N");
  }
  const store = await ctx.store();
  // Read-modify-write keeps the fields not named here (autoAllocateBlocks, ipCooldownSeconds, ...).
  for (let attempt = 0; ; attempt++) {
    try {
      await store.update("IPAMConfiguration", "default", undefined, (cur) => ({
        ...cur,
        spec: { ...cur.spec, ...change },
      }));
      break;
    } catch (e) {
      if (!isResourceNotFound(e)) throw e;
    }
    try {
      await store.create({
        apiVersion: API_VERSION,
        kind: "IPAMConfiguration",
        metadata: { name: "default" },
        spec: change,
      });
      break;
    } catch (e) {
      if (!isResourceExists(e) || attempt >= 3) throw e; // created meanwhile: update it
    }
  }
  if (change.strictAffinity !== undefined)
    ctx.out(`Successfully set StrictAffinity to: ${String(change.strictAffinity)}`);
  if (change.maxBlocksPerHost !== undefined)
    ctx.out(`Successfully set MaxBlocksPerHost to: ${String(change.maxBlocksPerHost)}`);
}

// ---- wiring ----------------------------------------------------------------------------

export function registerIpamCommands(program: Command, ctx: CliContext): void {
  const ipam = program
    .command("ipam")
    .description("IP address management: show usage, check for leaks, release, configure");

  ipam
    .command("show")
    .description("Show IP pool and block usage, one address, borrowed addresses or the IPAM configuration")
    .option("--ip <ip>", "who holds this address")
    .option("--show-blocks", "also show each block of each pool")
    .option("--show-borrowed", "addresses allocated from another node's block")
    .option("--show-configuration", "the IPAMConfiguration settings")
    .action(async (o: ShowOpts) => {
      const address = o.ip === undefined ? undefined : ipArg(o.ip, "--ip");
      const store = await ctx.store();
      const lib = new IPAM(store.datastore);
      if (address !== undefined) await showIP(ctx, lib, address);
      else if (o.showBorrowed === true) await showBorrowed(ctx, lib);
      else if (o.showConfiguration === true) await showConfiguration(ctx, store);
      else await showUtilisation(ctx, lib, o.showBlocks === true);
    });

  ipam
    .command("check")
    .description("Check IPAM for inconsistencies and leaked addresses; exit 1 if any are found")
    .option("--show-all-ips", "list every allocated address and why it counts as in use or not")
    .option("--show-problem-ips", "list every problem address (default: the first 10)")
    .option("-o, --output <file>", "write a JSON report for `ipam release --from-report`")
    .addHelpText("after", "\nExit status: 0 when IPAM is clean, 1 when problems were found.")
    .action(async (o: CheckOpts) => {
      await check(ctx, await ctx.store(), o);
    });

  ipam
    .command("release")
    .description("Release one address, or the addresses leaked in every given check report")
    .option("--ip <ip>", "release this address")
    .option(
      "--from-report <file>",
      "a report from `ipam check -o` (repeatable: only addresses leaked in all of them are released)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--force", "release from a report even if the datastore is not locked or the report is stale")
    .action(async (o: ReleaseOpts) => {
      const haveReports = o.fromReport.length > 0;
      if ((o.ip === undefined) === !haveReports) {
        throw new UsageError("ipam release: give either --ip=<ip> or --from-report=<file>");
      }
      if (o.ip !== undefined) {
        const address = ipArg(o.ip, "--ip");
        await releaseOne(ctx, new IPAM((await ctx.store()).datastore), address);
      } else {
        await releaseFromReports(ctx, o);
      }
    });

  ipam
    .command("configure")
    .description("Set IPAMConfiguration default: strict affinity and the per-host block cap")
    .option("--strictaffinity <bool>", "true: never borrow addresses from another node's block")
    .option(
      "--max-blocks-per-host <n>",
      "cap on blocks per node (0 = library default; needs strictaffinity true)",
    )
    .action(async (o: ConfigureOpts) => {
      await configure(ctx, o);
    });
}
