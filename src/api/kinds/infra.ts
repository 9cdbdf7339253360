import type { KindDef } from "./kind.js";

/** Infrastructure kinds (pools, nodes, endpoints, BGP, configuration). */
export const INFRA_KINDS: readonly KindDef[] = [];
