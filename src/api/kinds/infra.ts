import type { KindDef } from "./kind.js";
import { IP_POOL_KIND } from "./ip-pool.js";
import { IP_RESERVATION_KIND } from "./ip-reservation.js";
import { NODE_KIND } from "./node.js";
import { WORKLOAD_ENDPOINT_KIND } from "./workload-endpoint.js";
import { HOST_ENDPOINT_KIND } from "./host-endpoint.js";
import { BGP_CONFIGURATION_KIND } from "./bgp-configuration.js";
import { BGP_PEER_KIND } from "./bgp-peer.js";
import { BGP_FILTER_KIND } from "./bgp-filter.js";
import { FELIX_CONFIGURATION_KIND } from "./felix-configuration.js";
import { KUBE_CONTROLLERS_CONFIGURATION_KIND } from "./kube-controllers-configuration.js";
import { CLUSTER_INFORMATION_KIND } from "./cluster-information.js";
import { IPAM_CONFIGURATION_KIND } from "./ipam-configuration.js";

/** Infrastructure kinds (pools, nodes, endpoints, BGP, configuration). */
export const INFRA_KINDS: readonly KindDef[] = [
  IP_POOL_KIND,
  IP_RESERVATION_KIND,
  NODE_KIND,
  WORKLOAD_ENDPOINT_KIND,
  HOST_ENDPOINT_KIND,
  BGP_CONFIGURATION_KIND,
  BGP_PEER_KIND,
  BGP_FILTER_KIND,
  FELIX_CONFIGURATION_KIND,
  KUBE_CONTROLLERS_CONFIGURATION_KIND,
  CLUSTER_INFORMATION_KIND,
  IPAM_CONFIGURATION_KIND,
];
