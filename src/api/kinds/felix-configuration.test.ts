import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FELIX_CONFIGURATION_KIND, FELIX_FIELD_NAMES } from "./felix-configuration.js";
import { issuesFor, resource, SKIP_WITHOUT_SELECTORS } from "./infra-testing.js";

const K = FELIX_CONFIGURATION_KIND;

// Every field reference/calico.md §2.17 names (the "most important" list).
const REFERENCE_FIELDS = [
  "bpfEnabled",
  "nftablesMode",
  "iptablesBackend",
  "chainInsertMode",
  "ipipEnabled",
  "vxlanEnabled",
  "ipipMTU",
  "vxlanMTU",
  "vxlanMTUV6",
  "wireguardMTU",
  "wireguardMTUV6",
  "vxlanPort",
  "vxlanVNI",
  "mtuIfacePattern",
  "interfacePrefix",
  "interfaceExclude",
  "natOutgoingAddress",
  "natPortRange",
  "natOutgoingExclusions",
  "iptablesNATOutgoingInterfaceFilter",
  "routeSource",
  "routeTableRanges",
  "deviceRouteProtocol",
  "removeExternalRoutes",
  "programClusterRoutes",
  "ipForwarding",
  "workloadSourceSpoofing",
  "ipv4NormalRoutePriority",
  "ipv6NormalRoutePriority",
  "ipv4ElevatedRoutePriority",
  "ipv6ElevatedRoutePriority",
  "floatingIPs",
  "awsSrcDstCheck",
  "defaultEndpointToHostAction",
  "iptablesFilterAllowAction",
  "iptablesFilterDenyAction",
  "iptablesMangleAllowAction",
  "nftablesFilterAllowAction",
  "nftablesFilterDenyAction",
  "logPrefix",
  "logActionRateLimit",
  "failsafeInboundHostPorts",
  "failsafeOutboundHostPorts",
  "kubeNodePortRanges",
  "disableConntrackInvalidCheck",
  "xdpEnabled",
  "iptablesMarkMask",
  "nftablesMarkMask",
  "allowVXLANPacketsFromWorkloads",
  "allowIPIPPacketsFromWorkloads",
  "serviceLoopPrevention",
  "routeRefreshInterval",
  "iptablesRefreshInterval",
  "ipsetsRefreshInterval",
  "nftablesRefreshInterval",
  "iptablesPostWriteCheckInterval",
  "iptablesLockProbeInterval",
  "netlinkTimeout",
  "reportingInterval",
  "reportingTTL",
  "healthEnabled",
  "healthPort",
  "healthHost",
  "prometheusMetricsEnabled",
  "prometheusMetricsPort",
  "wireguardEnabled",
  "wireguardEnabledV6",
  "wireguardListeningPort",
  "wireguardListeningPortV6",
  "wireguardInterfaceName",
  "wireguardInterfaceNameV6",
  "wireguardRoutingRulePriority",
  "wireguardHostEncryptionEnabled",
  "wireguardKeepAlive",
  "bpfExternalServiceMode",
  "bpfConnectTimeLoadBalancing",
  "bpfKubeProxyIptablesCleanupEnabled",
  "bpfLogLevel",
  "bpfAttachType",
  "bpfPSNATPorts",
  "nodeSelector",
  "featureGates",
  "healthTimeoutOverrides",
  "goGCThreshold",
  "usageReportingEnabled",
  "endpointStatusPathPrefix",
];

describe("FelixConfiguration", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "felixconfigurations");
    assert.equal(K.namespaced, false);
    assert.deepEqual([...K.shortNames], ["felixconfiguration", "felixconfig", "felixconfigs"]);
  });

  it("knows every field the reference lists", () => {
    assert.deepEqual(
      REFERENCE_FIELDS.filter((f) => !FELIX_FIELD_NAMES.includes(f)),
      [],
    );
  });

  it("accepts the example from Calico's FelixConfiguration reference unchanged", () => {
    const spec = {
      ipv6Support: false,
      ipipMTU: 1400,
      chainInsertMode: "Append",
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  it("accepts every documented default value written out", () => {
    const spec = {
      bpfEnabled: false,
      nftablesMode: "Auto",
      iptablesBackend: "Auto",
      chainInsertMode: "Insert",
      vxlanPort: 4789,
      vxlanVNI: 4096,
      mtuIfacePattern: "^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)",
      interfacePrefix: "cali",
      interfaceExclude: "kube-ipvs0",
      natOutgoingExclusions: "IPPoolsOnly",
      routeSource: "CalicoIPAM",
      deviceRouteProtocol: 3,
      removeExternalRoutes: true,
      ipForwarding: "Enabled",
      ipv4NormalRoutePriority: 1024,
      ipv4ElevatedRoutePriority: 512,
      awsSrcDstCheck: "DoNothing",
      defaultEndpointToHostAction: "Drop",
      iptablesFilterAllowAction: "Accept",
      iptablesFilterDenyAction: "Drop",
      logPrefix: "calico-packet",
      failsafeInboundHostPorts: [
        { protocol: "tcp", port: 22 },
        { protocol: "udp", port: 68 },
        { protocol: "tcp", port: 179 },
        { protocol: "tcp", port: 2379 },
        { protocol: "tcp", port: 6443 },
      ],
      failsafeOutboundHostPorts: [{ protocol: "udp", port: 53 }, { port: 179 }],
      kubeNodePortRanges: ["30000:32767"],
      xdpEnabled: true,
      iptablesMarkMask: 0xffff0000,
      nftablesMarkMask: 0xffff0000,
      serviceLoopPrevention: "Drop",
      routeRefreshInterval: "90s",
      iptablesRefreshInterval: "3m0s",
      ipsetsRefreshInterval: "1m30s",
      iptablesPostWriteCheckInterval: "5s",
      iptablesLockProbeInterval: "50ms",
      netlinkTimeout: "10s",
      reportingInterval: "30s",
      reportingTTL: "90s",
      healthEnabled: true,
      healthPort: 9099,
      healthHost: "localhost",
      prometheusMetricsPort: 9091,
      wireguardListeningPort: 51820,
      wireguardInterfaceName: "wireguard.cali",
      wireguardInterfaceNameV6: "wg-v6.cali",
      wireguardRoutingRulePriority: 99,
      wireguardKeepAlive: "0s",
      bpfExternalServiceMode: "Tunnel",
      bpfConnectTimeLoadBalancing: "TCP",
      bpfLogLevel: "Off",
      bpfAttachType: "TCX",
      bpfPSNATPorts: "20000:29999",
      bpfForceTrackPacketsFromIfaces: ["docker+"],
      bpfConntrackTimeouts: { tcpEstablished: "1h", tcpFinsSeen: "Auto" },
      bpfLogFilters: { all: "tcp port 80" },
      goGCThreshold: 40,
      goMaxProcs: -1,
      routeTableRanges: [{ min: 1, max: 250 }],
      healthTimeoutOverrides: [{ name: "InternalDataplaneMainLoop", timeout: "2m" }],
      featureDetectOverride: "SNATFullyRandom=true,MASQFullyRandom=false,RestoreSupportsLock=",
      featureGates: "BPFConnectTimeLoadBalancingWorkaround=enabled",
      logActionRateLimit: "10/second",
      natPortRange: 0,
      istioDSCPMark: "EF",
      endpointStatusPathPrefix: "/var/run/calico",
      usageReportingEnabled: true,
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  it("reads enums case-insensitively, as Felix does", () => {
    assert.deepEqual(
      issuesFor(
        K,
        { chainInsertMode: "append", iptablesBackend: "nft", defaultEndpointToHostAction: "ACCEPT" },
        "default",
      ),
      [],
    );
  });

  it("accepts a node-scoped selector", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    assert.deepEqual(issuesFor(K, { nodeSelector: "rack == 'a'" }, "default"), []);
  });

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    ["a typo in a field name", { routeRefreshIntreval: "90s" }, "spec.routeRefreshIntreval", /unknown field/],
    [
      "the Go field name for externalNodesList",
      { externalNodesCIDRList: ["198.18.0.0/16"] },
      "spec.externalNodesCIDRList",
      /unknown field/,
    ],
    ["a boolean as a string", { bpfEnabled: "true" }, "spec.bpfEnabled", /true or false/],
    ["a duration without unit", { routeRefreshInterval: 90 }, "spec.routeRefreshInterval", /duration/],
    ["a duration in words", { reportingInterval: "30 seconds" }, "spec.reportingInterval", /duration/],
    ["a negative duration", { netlinkTimeout: "-10s" }, "spec.netlinkTimeout", /negative/],
    ["an unknown enum value", { nftablesMode: "On" }, "spec.nftablesMode", /Auto, Enabled, Disabled/],
    [
      "an unknown iptables backend",
      { iptablesBackend: "nftables" },
      "spec.iptablesBackend",
      /Auto, Legacy, NFT/,
    ],
    [
      "an unknown log level",
      { logSeverityScreen: "Verbose" },
      "spec.logSeverityScreen",
      /Trace, Debug, Info/,
    ],
    ["a VXLAN port of 0", { vxlanPort: 0 }, "spec.vxlanPort", /1 to 65535/],
    ["a VNI above 24 bits", { vxlanVNI: 16777216 }, "spec.vxlanVNI", /0 to 16777215/],
    ["a health port above 65535", { healthPort: 70000 }, "spec.healthPort", /0 to 65535/],
    ["a fractional MTU", { ipipMTU: 1400.5 }, "spec.ipipMTU", /integer/],
    ["a route protocol above 255", { deviceRouteProtocol: 256 }, "spec.deviceRouteProtocol", /0 to 255/],
    ["route priority 0", { ipv4NormalRoutePriority: 0 }, "spec.ipv4NormalRoutePriority", /1 to 2147483646/],
    ["an IPv6 NAT address", { natOutgoingAddress: "fd00::1" }, "spec.natOutgoingAddress", /IPv4/],
    [
      "an IPv4 device route source for IPv6",
      { deviceRouteSourceAddressIPv6: "198.18.0.1" },
      "spec.deviceRouteSourceAddressIPv6",
      /IPv6/,
    ],
    ["an IPv6 external node", { externalNodesList: ["fd00::/64"] }, "spec.externalNodesList[0]", /IPv4/],
    [
      "a malformed DSR opt-out CIDR",
      { bpfDSROptoutCIDRs: ["198.18.0.0/33"] },
      "spec.bpfDSROptoutCIDRs[0]",
      /CIDR/,
    ],
    [
      "a failsafe port without port",
      { failsafeInboundHostPorts: [{ protocol: "tcp" }] },
      "spec.failsafeInboundHostPorts[0].port",
      /required/,
    ],
    [
      "a failsafe port of 0",
      { failsafeInboundHostPorts: [{ protocol: "tcp", port: 0 }] },
      "spec.failsafeInboundHostPorts[0].port",
      /1 to 65535/,
    ],
    [
      "an ICMP failsafe port",
      { failsafeOutboundHostPorts: [{ protocol: "icmp", port: 1 }] },
      "spec.failsafeOutboundHostPorts[0].protocol",
      /TCP, UDP, SCTP/,
    ],
    [
      "a failsafe net that is not a CIDR",
      { failsafeInboundHostPorts: [{ port: 22, net: "office" }] },
      "spec.failsafeInboundHostPorts[0].net",
      /CIDR/,
    ],
    [
      "a typo in a failsafe port",
      { failsafeInboundHostPorts: [{ port: 22, cidr: "198.18.0.0/16" }] },
      "spec.failsafeInboundHostPorts[0].cidr",
      /unknown field/,
    ],
    [
      "failsafe ports as a string",
      { failsafeInboundHostPorts: "tcp:22" },
      "spec.failsafeInboundHostPorts",
      /list/,
    ],
    [
      "eight node port ranges",
      { kubeNodePortRanges: [1, 2, 3, 4, 5, 6, 7, 8] },
      "spec.kubeNodePortRanges",
      /at most 7/,
    ],
    ["a named node port", { kubeNodePortRanges: ["http"] }, "spec.kubeNodePortRanges[0]", /n:m/],
    ["a backwards port range", { natPortRange: "32767:30000" }, "spec.natPortRange", /n ≤ m/],
    ["a port range above 65535", { bpfPSNATPorts: "20000:70000" }, "spec.bpfPSNATPorts", /n:m/],
    [
      "both route table settings",
      { routeTableRange: { min: 1, max: 250 }, routeTableRanges: [{ min: 1, max: 250 }] },
      "spec.routeTableRange",
      /routeTableRanges/,
    ],
    [
      "a legacy route table above 250",
      { routeTableRange: { min: 1, max: 251 } },
      "spec.routeTableRange.max",
      /1 to 250/,
    ],
    [
      "a route table range with min above max",
      { routeTableRanges: [{ min: 300, max: 200 }] },
      "spec.routeTableRanges[0]",
      /greater than max/,
    ],
    [
      "route table ranges of too many tables",
      { routeTableRanges: [{ min: 1, max: 70000 }] },
      "spec.routeTableRanges",
      /too many tables/,
    ],
    [
      "route table index 0",
      { routeTableRanges: [{ min: 0, max: 10 }] },
      "spec.routeTableRanges[0].min",
      /1 to 4294967295/,
    ],
    ["a mark mask with one bit", { iptablesMarkMask: 0x1000 }, "spec.iptablesMarkMask", /2 bits/],
    ["a mark mask as a hex string", { nftablesMarkMask: "0xffff0000" }, "spec.nftablesMarkMask", /integer/],
    [
      "a mark mask above 32 bits",
      { iptablesMarkMask: 0x1ffff0000 },
      "spec.iptablesMarkMask",
      /0 to 4294967295/,
    ],
    ["an invalid MTU pattern", { mtuIfacePattern: "^(eth" }, "spec.mtuIfacePattern", /regular expression/],
    [
      "a bad interface prefix",
      { interfacePrefix: "cali,tap with space" },
      "spec.interfacePrefix",
      /interface name prefixes/,
    ],
    ["a bad log prefix", { logPrefix: "calico!" }, "spec.logPrefix", /letters, digits/],
    ["a bad rate limit", { logActionRateLimit: "10/week" }, "spec.logActionRateLimit", /10\/second/],
    [
      "a bad feature override",
      { featureDetectOverride: "SNATFullyRandom=maybe" },
      "spec.featureDetectOverride",
      /Feature=true/,
    ],
    ["a bad health host", { healthHost: "local host" }, "spec.healthHost", /host name/],
    [
      "a WireGuard interface name over 15 characters",
      { wireguardInterfaceName: "wireguard.calico0" },
      "spec.wireguardInterfaceName",
      /1-15/,
    ],
    [
      "a bad health timeout name",
      { healthTimeoutOverrides: [{ name: "a/b", timeout: "1m" }] },
      "spec.healthTimeoutOverrides[0].name",
      /component name/,
    ],
    [
      "a health timeout without timeout",
      { healthTimeoutOverrides: [{ name: "x" }] },
      "spec.healthTimeoutOverrides[0].timeout",
      /required/,
    ],
    [
      "a negative health timeout",
      { healthTimeoutOverrides: [{ name: "x", timeout: "-1m" }] },
      "spec.healthTimeoutOverrides[0].timeout",
      /negative/,
    ],
    [
      "a bad conntrack timer",
      { bpfConntrackTimeouts: { tcpEstablished: "forever" } },
      "spec.bpfConntrackTimeouts.tcpEstablished",
      /Auto/,
    ],
    [
      "a BPF log filter for a long interface name",
      { bpfLogFilters: { "a-very-long-interface": "tcp" } },
      'spec.bpfLogFilters["a-very-long-interface"]',
      /interface name/,
    ],
    [
      "a bad tracked interface",
      { bpfForceTrackPacketsFromIfaces: ["docker 0"] },
      "spec.bpfForceTrackPacketsFromIfaces[0]",
      /interface name/,
    ],
    ["a DSCP mark above 63", { istioDSCPMark: 64 }, "spec.istioDSCPMark", /0 to 63/],
    ["an unknown DSCP name", { istioDSCPMark: "FAST" }, "spec.istioDSCPMark", /DSCP/],
    [
      "an OpenStack region that is not a DNS label",
      { openstackRegion: "Region_1" },
      "spec.openstackRegion",
      /DNS-1123/,
    ],
    ["an over-long OpenStack region", { openstackRegion: "r".repeat(47) }, "spec.openstackRegion", /46/],
    ["goGCThreshold below -1", { goGCThreshold: -2 }, "spec.goGCThreshold", /integer/],
    ["a Maglev table above 3000", { bpfMaglevMaxServices: 3001 }, "spec.bpfMaglevMaxServices", /1 to 3000/],
    ["a nodeSelector using global()", { nodeSelector: "global()" }, "spec.nodeSelector", /./],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(`rejects ${name} at ${path}`, () => {
      const issues = issuesFor(K, spec, "default");
      assert.ok(
        issues.some((i) => i.path === path && message.test(i.message)),
        `expected ${path} ~ ${String(message)}, got ${JSON.stringify(issues)}`,
      );
    });
  }

  describe("names", () => {
    for (const ok of ["default", "node.host-1"])
      it(`accepts ${ok}`, () => assert.equal(K.nameProblem?.(ok), undefined));
    for (const bad of ["felix", "node", "node.-x"])
      it(`rejects ${bad}`, () => assert.notEqual(K.nameProblem?.(bad), undefined));
  });

  it("stores the configuration as written (Felix applies its own defaults)", () => {
    const r = resource(K, { logSeverityScreen: "Info" }, "default");
    assert.deepEqual(K.withDefaults(r), r);
  });
});
