/** IPAM: Calico's block allocator (docs/ipam.md). The API `calicoctl ipam` builds on. */
export {
  IPAM,
  MAX_RETRIES,
  DEFAULT_MAX_BLOCKS_PER_HOST,
  type AllocationInfo,
  type AssignedIP,
  type AutoAssignRequest,
  type AutoAssignResult,
  type IPAMStats,
  type ReleaseIPsResult,
  type ReleaseRequest,
} from "./allocator.js";
export {
  checkIPAM,
  IPAMIssueKind,
  type CheckOptions,
  type IPAMCheckReport,
  type IPAMIssue,
} from "./check.js";
export { gcDeletedNodes, type NodeGCResult } from "./gc.js";
export {
  AllocationState,
  classifyAllocations,
  type AllocationUse,
  type UnallocatedUse,
  type UsageReport,
} from "./usage.js";
export * from "./errors.js";
export {
  affinityKey,
  blockKey,
  blockPrefix,
  handleKey,
  parseBlock,
  freeCount,
  inUseCount,
  blockSize,
  type Block,
  type AffinityDoc,
  type HandleDoc,
} from "./block.js";
