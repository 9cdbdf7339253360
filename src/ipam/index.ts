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
export {
  DEFAULT_LEAK_GRACE_PERIOD_MS,
  gcDeletedNodes,
  IPAMGarbageCollector,
  leakGracePeriodMs,
  type GCPassResult,
  type LeakGCOptions,
  type NodeGCResult,
} from "./gc.js";
export {
  DEFAULT_REPAIR_MIN_AGE_MS,
  IPAMRepairer,
  repairIPAM,
  repairIsEmpty,
  type RepairOptions,
  type RepairResult,
} from "./repair.js";
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
