import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KUBE_CONTROLLERS_CONFIGURATION_KIND } from "./kube-controllers-configuration.js";
import { issuesFor, resource, SKIP_WITHOUT_SELECTORS } from "./infra-testing.js";

const K = KUBE_CONTROLLERS_CONFIGURATION_KIND;

describe("KubeControllersConfiguration", () => {
  it("is registered under calicoctl's names", () => {
    assert.equal(K.plural, "kubecontrollersconfigurations");
    assert.equal(K.namespaced, false);
    assert.ok(K.shortNames.includes("kubecontrollersconfig"));
  });

  it("accepts the example from Calico's reference unchanged", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    const spec = {
      logSeverityScreen: "Info",
      healthChecks: "Enabled",
      etcdV3CompactionPeriod: "10m",
      prometheusMetricsPort: 9094,
      controllers: {
        node: {
          reconcilerPeriod: "5m",
          leakGracePeriod: "15m",
          syncLabels: "Enabled",
          hostEndpoint: {
            autoCreate: "Disabled",
            createDefaultHostEndpoint: "Enabled",
            templates: [
              {
                generateName: "custom-host-endpoint",
                interfaceCIDRs: ["1.2.3.0/24"],
                interfacePattern: "eth0|eth1",
                nodeSelector: "has(my-label)",
                labels: { key: "value" },
              },
            ],
          },
        },
        policy: { reconcilerPeriod: "5m" },
        workloadEndpoint: { reconcilerPeriod: "5m" },
        serviceAccount: { reconcilerPeriod: "5m" },
        namespace: { reconcilerPeriod: "5m" },
        loadbalancer: { assignIPs: "AllServices" },
      },
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  it("stores the sample's lower-case loadbalancer under its API name", () => {
    const out = K.withDefaults(
      resource(K, { controllers: { loadbalancer: { assignIPs: "RequestedServicesOnly" } } }, "default"),
    );
    assert.deepEqual(out.spec, { controllers: { loadBalancer: { assignIPs: "RequestedServicesOnly" } } });
  });

  it("rejects both spellings of loadBalancer at once", () => {
    const issues = issuesFor(K, { controllers: { loadbalancer: {}, loadBalancer: {} } }, "default");
    assert.deepEqual(
      issues.map((i) => i.path),
      ["spec.controllers.loadbalancer"],
    );
  });

  it("accepts auto host endpoint templates", { skip: SKIP_WITHOUT_SELECTORS }, () => {
    const spec = {
      controllers: {
        node: {
          hostEndpoint: {
            autoCreate: "Enabled",
            createDefaultHostEndpoint: "Disabled",
            templates: [
              {
                generateName: "custom-host-endpoint",
                interfaceCIDRs: ["198.18.0.0/16"],
                nodeSelector: "has(my-label)",
                labels: { key: "value" },
              },
              { generateName: "by-name", interfacePattern: "^eth[0-9]+$" },
            ],
          },
        },
      },
    };
    assert.deepEqual(issuesFor(K, spec, "default"), []);
  });

  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "an unknown log level",
      { logSeverityScreen: "Loud", controllers: {} },
      "spec.logSeverityScreen",
      /Info/,
    ],
    [
      "healthChecks as a bool",
      { healthChecks: true, controllers: {} },
      "spec.healthChecks",
      /Enabled, Disabled/,
    ],
    [
      "a bad compaction period",
      { etcdV3CompactionPeriod: "10", controllers: {} },
      "spec.etcdV3CompactionPeriod",
      /duration/,
    ],
    [
      "a metrics port above 65535",
      { prometheusMetricsPort: 65536, controllers: {} },
      "spec.prometheusMetricsPort",
      /0 to 65535/,
    ],
    ["controllers not an object", { controllers: [] }, "spec.controllers", /object/],
    ["an unknown controller", { controllers: { route: {} } }, "spec.controllers.route", /unknown field/],
    [
      "a bad reconciler period",
      { controllers: { policy: { reconcilerPeriod: "often" } } },
      "spec.controllers.policy.reconcilerPeriod",
      /duration/,
    ],
    [
      "a bad syncLabels",
      { controllers: { node: { syncLabels: "On" } } },
      "spec.controllers.node.syncLabels",
      /Enabled, Disabled/,
    ],
    [
      "a bad autoCreate",
      { controllers: { node: { hostEndpoint: { autoCreate: "Yes" } } } },
      "spec.controllers.node.hostEndpoint.autoCreate",
      /Enabled, Disabled/,
    ],
    [
      "a template without CIDRs or pattern",
      { controllers: { node: { hostEndpoint: { templates: [{ generateName: "x" }] } } } },
      "spec.controllers.node.hostEndpoint.templates[0]",
      /interfaceCIDRs or interfacePattern/,
    ],
    [
      "a template with a bad pattern",
      { controllers: { node: { hostEndpoint: { templates: [{ interfacePattern: "(" }] } } } },
      "spec.controllers.node.hostEndpoint.templates[0].interfacePattern",
      /regular expression/,
    ],
    [
      "a template with a bad CIDR",
      { controllers: { node: { hostEndpoint: { templates: [{ interfaceCIDRs: ["x"] }] } } } },
      "spec.controllers.node.hostEndpoint.templates[0].interfaceCIDRs[0]",
      /CIDR/,
    ],
    [
      "a template with a bad label",
      {
        controllers: {
          node: { hostEndpoint: { templates: [{ interfacePattern: "eth0", labels: { "bad key!": "v" } }] } },
        },
      },
      'spec.controllers.node.hostEndpoint.templates[0].labels["bad key!"]',
      /label key/,
    ],
    [
      "a bad assignIPs",
      { controllers: { loadBalancer: { assignIPs: "Some" } } },
      "spec.controllers.loadBalancer.assignIPs",
      /AllServices, RequestedServicesOnly/,
    ],
    ["a typo", { controller: {} }, "spec.controller", /unknown field/],
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

  it("must be named default", () => {
    assert.equal(K.nameProblem?.("default"), undefined);
    assert.match(K.nameProblem?.("node.host-1") ?? "", /must be "default"/);
  });

  it("stores an empty controllers object when none is given", () => {
    assert.deepEqual(K.withDefaults(resource(K, {}, "default")).spec, { controllers: {} });
  });
});
