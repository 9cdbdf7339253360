/**
 * `lab up --tor`: Calico in one part of a routed network that stays as it is. A BIRD 2 router
 * (the "top of rack") in its own namespace on the lab's bridge, and a plain host behind it
 * that knows nothing of Calico. The mesh is off; every calico-node peers with the ToR through
 * one global `BGPPeer`, and the ToR, an iBGP route reflector in AS 64512, reflects each host's
 * blocks to the others (next hop unchanged: the owning host) and installs them in its own
 * kernel. It also announces the plain host's subnet, so workloads answer it; the plain host
 * reaches the workloads by their routed addresses, through the ToR, with no NAT or overlay.
 *
 *   bridge 198.18.0.0/24 ── tor 198.18.0.253 (BIRD) ── ext0 198.18.1.1/24 ── ext 198.18.1.2
 */
import { setBigTcp } from "../dataplane/big-tcp.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, runOk } from "../dataplane/netns.js";
import type { LabState } from "./lab-state.js";

export const TOR_V4 = "198.18.0.253";
export const TOR_V6 = "fd00::fd";
export const EXT_NET = "198.18.1.0/24";
export const EXT_GW = "198.18.1.1";
export const EXT_V4 = "198.18.1.2";
export const LAB_ASN = 64512;

export const BIRD_BIN = process.env.BIRD_BIN ?? "bird";

/** BIRD's configuration: one iBGP protocol per host and family, all route-reflector clients. */
export function torBirdConfig(s: LabState): string {
  const proto = (name: string, local: string, neighbor: string, ch: "ipv4" | "ipv6") => `
protocol bgp ${name} from hosts_${ch} {
  local ${local} as ${LAB_ASN};
  neighbor ${neighbor} as ${LAB_ASN};
}`;
  const template = (ch: "ipv4" | "ipv6") => `
template bgp hosts_${ch} {
  rr client;
  direct;
  connect delay time 1; connect retry time 2; error wait time 1, 4;
  ${ch} { import all; export all; };
}`;
  return `# Written by calicoctl lab up --tor.
router id ${TOR_V4};
protocol device { scan time 5; }
# The plain host's subnet, announced to every host so workloads can answer it.
protocol direct { ipv4; interface "ext0"; }
# Reflected blocks go into this namespace's kernel: the ToR forwards to the owning host.
protocol kernel kernel4 { ipv4 { import none; export where source = RTS_BGP; }; }
${s.ipv6 ? "protocol kernel kernel6 { ipv6 { import none; export where source = RTS_BGP; }; }\n" : ""}${template("ipv4")}
${s.ipv6 ? template("ipv6") : ""}
${s.hosts.map((h) => proto(h.name, TOR_V4, h.v4, "ipv4")).join("\n")}
${s.ipv6 ? s.hosts.map((h) => (h.v6 !== undefined ? proto(`${h.name}_v6`, TOR_V6, h.v6, "ipv6") : "")).join("\n") : ""}
`;
}

/** The datastore side: mesh off, one global BGPPeer per family to the ToR. */
export function torResources(ipv6: boolean): unknown[] {
  const v3 = "projectcalico.org/v3";
  return [
    {
      apiVersion: v3,
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { nodeToNodeMeshEnabled: false, asNumber: LAB_ASN },
    },
    {
      apiVersion: v3,
      kind: "BGPPeer",
      metadata: { name: "tor" },
      spec: { peerIP: TOR_V4, asNumber: LAB_ASN },
    },
    ...(ipv6
      ? [
          {
            apiVersion: v3,
            kind: "BGPPeer",
            metadata: { name: "tor-v6" },
            spec: { peerIP: TOR_V6, asNumber: LAB_ASN },
          },
        ]
      : []),
  ];
}

/**
 * Wire the ToR and the plain host (their namespaces exist): the ToR on the bridge as port
 * `ptor`, a veth ToR `ext0` ↔ ext `eth0`; returns BIRD's config path and control socket.
 */
export async function wireTor(s: LabState, tor: string, ext: string): Promise<{ conf: string; ctl: string }> {
  const f = s.fabricNetns;
  const batch = (ns: string, lines: string[]) =>
    runOk("ip", ["-n", ns, "-batch", "-"], { input: `${lines.join("\n")}\n` });
  await batch(tor, [
    `link add eth0 type veth peer name ptor netns ${f}`,
    `addr add ${TOR_V4}/24 dev eth0`,
    ...(s.ipv6 ? [`addr add ${TOR_V6}/64 dev eth0 nodad`] : []),
    "link set eth0 up",
    `link add ext0 type veth peer name eth0 netns ${ext}`,
    `addr add ${EXT_GW}/24 dev ext0`,
    "link set ext0 up",
  ]);
  await batch(f, ["link set ptor master br0", "link set ptor up"]);
  await batch(ext, [
    `addr add ${EXT_V4}/24 dev eth0`,
    "link set eth0 up",
    `route add default via ${EXT_GW} dev eth0`,
  ]);
  if (s.bigTcp === true)
    // The plain host's path to the workloads gets the lab's packet size too (best effort).
    await Promise.all([setBigTcp(tor, ["eth0", "ext0"]), setBigTcp(f, ["ptor"]), setBigTcp(ext, ["eth0"])]);
  const conf = join(s.stateDir, "tor-bird.conf");
  const ctl = join(s.stateDir, "tor-bird.ctl");
  writeFileSync(conf, torBirdConfig(s));
  await runOk(BIRD_BIN, ["-p", "-c", conf]);
  return { conf, ctl };
}

export interface TorSession {
  name: string;
  state: string;
  info: string;
}

/** BIRD's BGP protocols and their states (`birdc show protocols`); [] when BIRD does not answer. */
export async function torSessions(ctl: string): Promise<TorSession[]> {
  const r = await run("birdc", ["-s", ctl, "show", "protocols"], { timeoutMs: 3000 });
  if (r.code !== 0) return [];
  const out: TorSession[] = [];
  for (const line of r.stdout.split("\n")) {
    const f = line.trim().split(/\s+/);
    // Name Proto Table State Since Info…
    if (f[1] !== "BGP" || f.length < 5) continue;
    out.push({ name: f[0]!, state: f[3]!, info: f.slice(5).join(" ") });
  }
  return out;
}
