/**
 * Host endpoints with policy, enforced by a real calico-node and checked with real packets
 * (reference/calico.md §2.5, §2.12): a named HEP for the host's eth0 (towards "ext"), then
 *
 * - normal policy: ext→host TCP 80 allowed, 81 denied, failsafe 22 always allowed, forwarding
 *   untouched;
 * - applyOnForward: forwarded ext→workload TCP 81 denied, the rest of forwarding allowed;
 * - preDNAT (ingress, applyOnForward): one source denied towards one workload;
 * - doNotTrack: both directions must be allowed (ingress alone is not enough);
 * - workload→host traffic with defaultEndpointToHostAction Drop (default) vs Accept.
 */
import { after, before, describe, test } from "node:test";
import { decodeResources } from "../src/api/codec.js";
import { runOk } from "../src/dataplane/netns.js";
import type { AnyResource } from "../src/api/resource.js";
import { EXT_V4, EXT_V6, HOST_V4, HOST_V6, OneHostFabric } from "./helpers/one-host-fabric.js";
import { docs, KNS_X_ALLOW } from "./helpers/scenarios.js";
import { waitForAgent } from "./helpers/agent-status.js";
import { assertReach, type Expectation, type ProbeKind } from "./helpers/reach.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && process.env.CI === undefined ? "needs root (network namespaces, nftables)" : false;

const A = "198.19.5.1";
const A6 = "fd00:19:0:5::1";
const B = "198.19.5.2";

const SETUP = docs(
  KNS_X_ALLOW,
  `
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: h1-eth0, labels: {role: host}}
spec: {node: h1, interfaceName: eth0, expectedIPs: [${HOST_V4}, "${HOST_V6}"]}
`,
);

const HOST_80 = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: host-80}
spec:
  selector: role == 'host'
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
`;

/** `from → (name, addr)` with a map of probe → allowed. */
function row(
  from: string,
  to: string,
  addr: string,
  cells: Partial<Record<ProbeKind, boolean>>,
): Expectation[] {
  return Object.entries(cells).map(([probe, allowed]) => ({
    from,
    to,
    addr,
    probe: probe as ProbeKind,
    allowed: allowed === true,
  }));
}

describe("host endpoints with policy on the real kernel", { skip }, () => {
  const fabric = new OneHostFabric();

  before(async () => {
    await fabric.start();
    for (const r of decodeResources(SETUP)) await fabric.store!.apply(r.resource);
    await fabric.addWorkload({ namespace: "x", name: "a", labels: { app: "a" }, v4: A, v6: A6 });
    await fabric.addWorkload({
      namespace: "x",
      name: "b",
      labels: { app: "b" },
      v4: B,
      v6: "fd00:19:0:5::2",
    });
    fabric.startAgent();
    await waitForAgent(fabric, await fabric.revision());
  });
  after(async () => {
    if (process.exitCode !== undefined && process.exitCode !== 0)
      process.stderr.write(fabric.agentLog.slice(-20_000));
    await fabric.stop();
  });

  /** Apply `yaml`, wait for the agent, run `body`, then delete what was applied. */
  async function withResources(yaml: string, body: () => Promise<void>): Promise<void> {
    const applied: AnyResource[] = [];
    try {
      for (const r of decodeResources(yaml)) applied.push((await fabric.store!.apply(r.resource)).resource);
      await waitForAgent(fabric, await fabric.revision());
      await body();
    } finally {
      for (const r of applied.reverse()) await fabric.store!.delete({ kind: r.kind, name: r.metadata.name });
      await waitForAgent(fabric, await fabric.revision());
    }
  }

  test("normal policy: ext→host TCP 80 allowed, 81 denied, failsafe 22 allowed; forwarding untouched", () =>
    withResources(HOST_80, () =>
      assertReach(
        fabric,
        [
          ...row("ext", "host", HOST_V4, {
            tcp22: true,
            tcp80: true,
            tcp81: false,
            tcp8080: false,
            icmp: false,
          }),
          ...row("ext", "x/a", A, { tcp80: true, tcp81: true, icmp: true }),
        ],
        "host-80 on the HEP",
      ),
    ));

  test("applyOnForward: forwarded TCP 81 to workloads denied, other forwarding allowed", () =>
    withResources(
      `${HOST_80}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: fwd-no-81}
spec:
  order: 10
  selector: role == 'host'
  applyOnForward: true
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: TCP, destination: {nets: [198.19.0.0/16], ports: [81]}}
  - {action: Allow, destination: {nets: [198.19.0.0/16]}}`,
      () =>
        assertReach(
          fabric,
          [
            ...row("ext", "x/a", A, { tcp80: true, tcp81: false, tcp8080: true, icmp: true }),
            ...row("ext", "x/b", B, { tcp80: true, tcp81: false }),
            ...row("ext", "host", HOST_V4, { tcp22: true, tcp80: true, tcp81: false }),
          ],
          "fwd-no-81 (applyOnForward) with host-80",
        ),
    ));

  test("preDNAT: ext is denied towards b before DNAT; the rest is unaffected", () =>
    withResources(
      `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pre-no-ext-to-b}
spec:
  selector: role == 'host'
  preDNAT: true
  applyOnForward: true
  types: [Ingress]
  ingress: [{action: Deny, source: {nets: [${EXT_V4}/32]}, destination: {nets: [${B}/32]}}]`,
      () =>
        assertReach(
          fabric,
          [
            ...row("ext", "x/b", B, { tcp80: false, tcp81: false, icmp: false }),
            ...row("ext", "x/a", A, { tcp80: true, tcp81: true, icmp: true }),
            // No normal policy on the HEP: only the failsafe ports reach the host.
            ...row("ext", "host", HOST_V4, { tcp22: true, tcp80: false }),
          ],
          "pre-no-ext-to-b (preDNAT)",
        ),
    ));

  test("doNotTrack: allowing ingress alone is not enough; with the reply direction allowed it works", async () => {
    const ingressOnly = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked-8080}
spec:
  selector: role == 'host'
  doNotTrack: true
  applyOnForward: true
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]`;
    await withResources(ingressOnly, () =>
      assertReach(
        fabric,
        row("ext", "host", HOST_V4, { tcp8080: false, tcp22: true, tcp80: false }),
        "untracked ingress only: the untracked reply meets the HEP's default deny",
      ),
    );
    const both = `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked-8080}
spec:
  selector: role == 'host'
  doNotTrack: true
  applyOnForward: true
  types: [Ingress, Egress]
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]
  egress: [{action: Allow, protocol: TCP, source: {ports: [8080]}}]`;
    await withResources(both, () =>
      assertReach(
        fabric,
        [...row("ext", "host", HOST_V4, { tcp8080: true, tcp22: true, tcp80: false })],
        "untracked, both directions allowed",
      ),
    );
  });

  test("workload→host: defaultEndpointToHostAction Drop (default) vs Accept", async () => {
    const toHost = (allowed: boolean) => [
      ...row("x.a", "host", HOST_V4, { tcp80: allowed, tcp81: allowed, icmp: allowed }),
    ];
    await assertReach(fabric, toHost(false), "defaultEndpointToHostAction Drop (default)");
    // Forwarded workload traffic is not host-bound: a→ext stays allowed either way.
    await assertReach(fabric, row("x.a", "ext", EXT_V4, { tcp80: true }), "a→ext (forwarded)");
    await withResources(
      `
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {defaultEndpointToHostAction: Accept}`,
      () => assertReach(fabric, toHost(true), "defaultEndpointToHostAction Accept"),
    );
    await assertReach(fabric, toHost(false), "back to Drop once the FelixConfiguration is gone");
  });

  test("IPv6 with a HEP: neighbour discovery works with empty neighbour caches; host-80 enforced on v6", async () => {
    for (const ns of [fabric.host, fabric.ext])
      await runOk("ip", ["-n", ns, "-6", "neigh", "flush", "dev", "eth0"]);
    await withResources(HOST_80, () =>
      assertReach(
        fabric,
        [
          ...row("ext", "host6", HOST_V6, { tcp22: true, tcp80: true, tcp81: false }),
          ...row("ext", "x/a6", A6, { tcp80: true, tcp81: true }),
          ...row("x.a", "ext6", EXT_V6, { tcp80: true }),
          ...row("x.a", "host6", HOST_V6, { tcp80: false }),
        ],
        "IPv6 through the HEP'd eth0 after a neighbour flush",
      ),
    );
  });
});
