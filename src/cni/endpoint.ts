/**
 * The WorkloadEndpoint an attachment writes (reference/calico.md §2.4, §7.2, §7.4). Identity:
 * with `K8S_POD_NAMESPACE`/`K8S_POD_NAME` in CNI_ARGS it is a Kubernetes pod (orchestrator
 * `k8s`, profile `kns.<namespace>`, host veth named from `<namespace>.<pod>` as Calico does);
 * otherwise a plain CNI container (orchestrator `cni`, namespace `default`, profile = the
 * network's name, host veth named from the container ID). There is no Kubernetes API here, so
 * labels come from `args.cni.labels` / `runtimeConfig.labels`, not from the Pod.
 */
import { isResourceExists, isResourceNotFound, ResourceStore } from "../datastore/resources.js";
import type { Datastore } from "../datastore/types.js";
import { workloadEndpointName } from "../api/kinds/workload-endpoint.js";
import type { AnyResource } from "../api/resource.js";
import { hostVethName } from "../lab/workload.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./types.js";

export interface EndpointIdentity {
  orchestrator: "k8s" | "cni";
  namespace: string;
  /** The WorkloadEndpoint's name. */
  name: string;
  /** `pod` (k8s) or `workload` (cni) value. */
  workload: string;
  hostIface: string;
  /** Owner attributes stored with the IPAM allocation. */
  ipamAttrs: Record<string, string>;
  profiles: string[];
}

export function endpointIdentity(env: CniEnv, node: string, network: string): EndpointIdentity {
  const podName = env.args.K8S_POD_NAME ?? "";
  const podNs = env.args.K8S_POD_NAMESPACE ?? "";
  const suffix = env.ifname === "eth0" ? "" : `.${env.ifname}`;
  try {
    if (podName !== "" && podNs !== "") {
      return {
        orchestrator: "k8s",
        namespace: podNs,
        name: workloadEndpointName({ node, orchestrator: "k8s", pod: podName, endpoint: env.ifname }),
        workload: podName,
        hostIface: hostVethName(`${podNs}.${podName}${suffix}`),
        ipamAttrs: { namespace: podNs, pod: podName },
        profiles: [`kns.${podNs}`],
      };
    }
    return {
      orchestrator: "cni",
      namespace: "default",
      name: workloadEndpointName({
        node,
        orchestrator: "cni",
        containerID: env.containerID,
        endpoint: env.ifname,
      }),
      workload: env.containerID,
      hostIface: hostVethName(`${env.containerID}${suffix}`),
      ipamAttrs: { namespace: "default", workload: env.containerID },
      profiles: [network],
    };
  } catch (e) {
    throw new CniError(
      CniCode.INVALID_ENVIRONMENT,
      `Cannot name the workload endpoint: ${(e as Error).message}`,
    );
  }
}

/** Which CNI network wrote an endpoint (GC of one network leaves the others' endpoints alone). */
export const NETWORK_ANNOTATION = "cni.projectcalico.org/network";

export interface EndpointSpec {
  id: EndpointIdentity;
  network: string;
  node: string;
  containerID: string;
  ifname: string;
  mac: string;
  ipv4: string[];
  ipv6: string[];
  labels: Record<string, string>;
}

function endpointResource(s: EndpointSpec): Record<string, unknown> {
  return {
    apiVersion: "projectcalico.org/v3",
    kind: "WorkloadEndpoint",
    metadata: {
      name: s.id.name,
      namespace: s.id.namespace,
      annotations: { [NETWORK_ANNOTATION]: s.network },
      labels: {
        ...s.labels,
        "projectcalico.org/namespace": s.id.namespace,
        "projectcalico.org/orchestrator": s.id.orchestrator,
      },
    },
    spec: {
      orchestrator: s.id.orchestrator,
      node: s.node,
      containerID: s.containerID,
      ...(s.id.orchestrator === "k8s" ? { pod: s.id.workload } : { workload: s.id.workload }),
      endpoint: s.ifname,
      interfaceName: s.id.hostIface,
      mac: s.mac,
      ipNetworks: [...s.ipv4.map((a) => `${a}/32`), ...s.ipv6.map((a) => `${a}/128`)],
      profiles: s.id.profiles,
    },
  };
}

/** Write the endpoint (replacing one a previous sandbox of the same pod left). */
export async function writeEndpoint(ds: Datastore, s: EndpointSpec): Promise<void> {
  const store = new ResourceStore(ds);
  const res = endpointResource(s);
  try {
    await store.create(res);
  } catch (e) {
    if (!isResourceExists(e)) throw e;
    await store.update("WorkloadEndpoint", s.id.name, s.id.namespace, (cur) => ({
      ...res,
      metadata: { ...(res.metadata as object), resourceVersion: cur.metadata.resourceVersion },
    }));
  }
}

export async function getEndpoint(ds: Datastore, id: EndpointIdentity): Promise<AnyResource | undefined> {
  try {
    return await new ResourceStore(ds).get("WorkloadEndpoint", id.name, id.namespace);
  } catch (e) {
    if (isResourceNotFound(e)) return undefined;
    throw e;
  }
}

/** Delete the endpoint at the revision read; gone already is fine. */
export async function deleteEndpoint(ds: Datastore, wep: AnyResource): Promise<void> {
  try {
    await new ResourceStore(ds).delete({
      kind: "WorkloadEndpoint",
      name: wep.metadata.name,
      ...(wep.metadata.namespace !== undefined ? { namespace: wep.metadata.namespace } : {}),
      ...(wep.metadata.resourceVersion !== undefined
        ? { resourceVersion: wep.metadata.resourceVersion }
        : {}),
    });
  } catch (e) {
    if (!isResourceNotFound(e)) throw e;
  }
}

/** Every endpoint of `node` written by a plugin (orchestrator k8s or cni), for GC. */
export async function nodeEndpoints(ds: Datastore, node: string): Promise<AnyResource[]> {
  const { items } = await new ResourceStore(ds).list("WorkloadEndpoint");
  return items.filter(
    (w) => w.spec.node === node && (w.spec.orchestrator === "k8s" || w.spec.orchestrator === "cni"),
  );
}

/**
 * The profile a plain CNI network's endpoints use, created on first use as Calico does for
 * non-Kubernetes networks: members carry the label `<network>` and accept traffic from each
 * other; egress is open.
 */
export async function ensureNetworkProfile(ds: Datastore, network: string): Promise<void> {
  const store = new ResourceStore(ds);
  try {
    await store.get("Profile", network);
    return;
  } catch (e) {
    if (!isResourceNotFound(e)) throw e;
  }
  try {
    await store.create({
      apiVersion: "projectcalico.org/v3",
      kind: "Profile",
      metadata: { name: network },
      spec: {
        labelsToApply: { [network]: "" },
        ingress: [{ action: "Allow", source: { selector: `has(${network})` } }],
        egress: [{ action: "Allow" }],
      },
    });
  } catch (e) {
    if (!isResourceExists(e)) throw e;
  }
}
