import type { KindDef } from "./kind.js";
import { IP_POOL_KIND } from "./ip-pool.js";
import { NODE_KIND } from "./node.js";
import { WORKLOAD_ENDPOINT_KIND } from "./workload-endpoint.js";
import { HOST_ENDPOINT_KIND } from "./host-endpoint.js";

/** Infrastructure kinds (pools, nodes, endpoints, BGP, configuration). */
export const INFRA_KINDS: readonly KindDef[] = [
  IP_POOL_KIND,
  NODE_KIND,
  WORKLOAD_ENDPOINT_KIND,
  HOST_ENDPOINT_KIND,
];
