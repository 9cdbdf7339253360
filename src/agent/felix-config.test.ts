import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "./log.js";
import {
  DEFAULT_FAILSAFE_INBOUND,
  DEFAULT_FAILSAFE_OUTBOUND,
  FELIX_CONFIG_PREFIX,
  FelixConfigTracker,
  resolveConfig,
  type AgentConfig,
  type ConfigInputs,
} from "./felix-config.js";

describe("felix-config: precedence and parsing", () => {
  const cases: {
    name: string;
    inputs: ConfigInputs;
    pick: (c: AgentConfig) => unknown;
    want: unknown;
    source?: [string, string];
  }[] = [
    {
      name: "built-in interface prefix",
      inputs: {},
      pick: (c) => c.dataplane.interfacePrefixes,
      want: ["cali"],
    },
    {
      name: "default sets a field",
      inputs: { defaultSpec: { interfacePrefix: "tap,cali" } },
      pick: (c) => c.dataplane.interfacePrefixes,
      want: ["tap", "cali"],
      source: ["interfacePrefix", "default"],
    },
    {
      name: "node.<name> overrides default",
      inputs: { defaultSpec: { healthPort: 9000 }, nodeSpec: { healthPort: 9001 } },
      pick: (c) => c.healthPort,
      want: 9001,
      source: ["healthPort", "node"],
    },
    {
      name: "node.<name> overrides field by field, the rest stays default",
      inputs: { defaultSpec: { healthPort: 9000, healthHost: "198.18.0.1" }, nodeSpec: { healthPort: 9001 } },
      pick: (c) => [c.healthHost, c.healthPort],
      want: ["198.18.0.1", 9001],
    },
    {
      name: "env beats node and default",
      inputs: {
        defaultSpec: { healthPort: 9000 },
        nodeSpec: { healthPort: 9001 },
        env: { FELIX_HEALTHPORT: "9002" },
      },
      pick: (c) => c.healthPort,
      want: 9002,
      source: ["healthPort", "env"],
    },
    {
      name: "env names are case-insensitive",
      inputs: { env: { felix_HealthEnabled: "true" } },
      pick: (c) => c.healthEnabled,
      want: true,
    },
    {
      name: "an invalid env value falls through to the next source",
      inputs: { defaultSpec: { healthPort: 9000 }, env: { FELIX_HEALTHPORT: "ninety" } },
      pick: (c) => c.healthPort,
      want: 9000,
      source: ["healthPort", "default"],
    },
    { name: "refresh default 90s", inputs: {}, pick: (c) => c.routeRefreshIntervalMs, want: 90_000 },
    {
      name: "tables refresh default 180s",
      inputs: {},
      pick: (c) => c.tablesRefreshIntervalMs,
      want: 180_000,
    },
    {
      name: "Go duration in FelixConfiguration",
      inputs: { defaultSpec: { routeRefreshInterval: "1m30s" } },
      pick: (c) => c.routeRefreshIntervalMs,
      want: 90_000,
    },
    {
      name: "seconds in env",
      inputs: { env: { FELIX_ROUTEREFRESHINTERVAL: "2.5" } },
      pick: (c) => c.routeRefreshIntervalMs,
      want: 2_500,
    },
    {
      name: "iptablesRefreshInterval stands in when nftables' is unset",
      inputs: { defaultSpec: { iptablesRefreshInterval: "10s" } },
      pick: (c) => c.tablesRefreshIntervalMs,
      want: 10_000,
    },
    {
      name: "nftablesRefreshInterval wins over iptables'",
      inputs: { defaultSpec: { iptablesRefreshInterval: "10s", nftablesRefreshInterval: "20s" } },
      pick: (c) => c.tablesRefreshIntervalMs,
      want: 20_000,
    },
    {
      name: "failsafe defaults (reference §2.12)",
      inputs: {},
      pick: (c) => [c.dataplane.failsafeInboundHostPorts, c.dataplane.failsafeOutboundHostPorts],
      want: [DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND],
    },
    {
      name: "failsafe [] disables",
      inputs: { defaultSpec: { failsafeInboundHostPorts: [] } },
      pick: (c) => c.dataplane.failsafeInboundHostPorts,
      want: [],
    },
    {
      name: "failsafe none in env disables",
      inputs: { env: { FELIX_FAILSAFEOUTBOUNDHOSTPORTS: "none" } },
      pick: (c) => c.dataplane.failsafeOutboundHostPorts,
      want: [],
    },
    {
      name: "failsafe env list with nets",
      inputs: {
        env: { FELIX_FAILSAFEINBOUNDHOSTPORTS: "tcp:22,UDP:198.18.0.0/16:68,tcp:[fd00::/64]:179,8080" },
      },
      pick: (c) => c.dataplane.failsafeInboundHostPorts,
      want: [
        { protocol: "tcp", port: 22 },
        { protocol: "udp", port: 68, net: "198.18.0.0/16" },
        { protocol: "tcp", port: 179, net: "fd00::/64" },
        { protocol: "tcp", port: 8080 },
      ],
    },
    {
      name: "failsafe API form, protocol defaults to TCP",
      inputs: {
        nodeSpec: {
          failsafeInboundHostPorts: [{ port: 22 }, { protocol: "UDP", port: 53, net: "198.18.0.0/24" }],
        },
      },
      pick: (c) => c.dataplane.failsafeInboundHostPorts,
      want: [
        { protocol: "tcp", port: 22 },
        { protocol: "udp", port: 53, net: "198.18.0.0/24" },
      ],
    },
    {
      name: "defaultEndpointToHostAction, case-insensitive from env",
      inputs: { env: { FELIX_DEFAULTENDPOINTTOHOSTACTION: "accept" } },
      pick: (c) => c.dataplane.defaultEndpointToHostAction,
      want: "Accept",
    },
    {
      name: "defaultEndpointToHostAction default",
      inputs: {},
      pick: (c) => c.dataplane.defaultEndpointToHostAction,
      want: "Drop",
    },
    { name: "log severity default", inputs: {}, pick: (c) => c.logSeverityScreen, want: "info" },
    {
      name: "log severity from FelixConfiguration",
      inputs: { defaultSpec: { logSeverityScreen: "Warning" } },
      pick: (c) => c.logSeverityScreen,
      want: "warning",
    },
    {
      name: "logPrefix",
      inputs: { defaultSpec: { logPrefix: "cts-drop" } },
      pick: (c) => c.dataplane.logPrefix,
      want: "cts-drop",
    },
    {
      name: "health and metrics defaults (Appendix A)",
      inputs: {},
      pick: (c) => [
        c.healthEnabled,
        c.healthHost,
        c.healthPort,
        c.prometheusMetricsEnabled,
        c.prometheusMetricsPort,
      ],
      want: [false, "localhost", 9099, false, 9091],
    },
    {
      name: "metrics enabled from env",
      inputs: { env: { FELIX_PROMETHEUSMETRICSENABLED: "TRUE", FELIX_PROMETHEUSMETRICSPORT: "19091" } },
      pick: (c) => [c.prometheusMetricsEnabled, c.prometheusMetricsPort],
      want: [true, 19091],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = resolveConfig(c.inputs);
      assert.deepEqual(c.pick(r.config), c.want);
      if (c.source !== undefined) assert.equal(r.sources[c.source[0] as keyof typeof r.sources], c.source[1]);
    });
  }

  test("an invalid value is logged, naming the parameter and source", () => {
    const lines: string[] = [];
    resolveConfig({ defaultSpec: { healthPort: 70000 }, log: createLogger({ write: (l) => lines.push(l) }) });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /healthPort/);
    assert.match(lines[0]!, /FelixConfiguration default/);
  });
});

describe("felix-config: following FelixConfiguration updates", () => {
  test("node.<name> of this node only; reports what changed", () => {
    const changes: string[][] = [];
    const t = new FelixConfigTracker({
      nodename: "host-a",
      env: { FELIX_HEALTHPORT: "9500" },
      onChange: (_c, diff) =>
        changes.push(
          Object.entries(diff)
            .filter(([, v]) => v)
            .map(([k]) => k),
        ),
    });
    assert.equal(t.config.healthPort, 9500);
    assert.equal(
      t.onUpdates([{ key: `${FELIX_CONFIG_PREFIX}node.host-b`, value: { spec: { logPrefix: "x" } } }]),
      false,
    );
    assert.equal(
      t.onUpdates([{ key: `${FELIX_CONFIG_PREFIX}default`, value: { spec: { logPrefix: "d" } } }]),
      true,
    );
    assert.equal(t.config.dataplane.logPrefix, "d");
    t.onUpdates([
      { key: `${FELIX_CONFIG_PREFIX}node.host-a`, value: { spec: { logPrefix: "n", healthPort: 1 } } },
    ]);
    assert.equal(t.config.dataplane.logPrefix, "n");
    assert.equal(t.config.healthPort, 9500, "env still wins");
    t.onUpdates([{ key: `${FELIX_CONFIG_PREFIX}node.host-a`, value: null }]);
    assert.equal(t.config.dataplane.logPrefix, "d");
    t.onUpdates([
      {
        key: `${FELIX_CONFIG_PREFIX}default`,
        value: { spec: { logPrefix: "d", logSeverityScreen: "Debug", routeRefreshInterval: "5s" } },
      },
    ]);
    assert.deepEqual(changes, [["dataplane"], ["dataplane"], ["dataplane"], ["log", "timers"]]);
  });
});
