/**
 * What the end-to-end tests on a lab share: a short-lived store on the lab's datastore, and
 * waiting until every calico-node has applied a datastore revision (its status file).
 */
import { openDatastore } from "../../src/datastore/open.js";
import { ResourceStore } from "../../src/datastore/resources.js";
import { readAgentStatus } from "../../src/lab/agent-status.js";
import type { LabState } from "../../src/lab/lab-state.js";

/** Run `f` with a store on the lab's datastore, closed afterwards. */
export async function withLabStore<T>(state: LabState, f: (store: ResourceStore) => Promise<T>): Promise<T> {
  const ds = await openDatastore(state.datastore.url);
  try {
    return await f(new ResourceStore(ds));
  } finally {
    await ds.close();
  }
}

/** Until every calico-node of the lab has applied `revision` (at most `timeoutMs`). */
export async function waitLabApplied(state: LabState, revision: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind = state.hosts.filter(
      (h) => (readAgentStatus(h.statusFile)?.appliedRevision ?? 0) < revision,
    );
    if (behind.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `calico-node on ${behind.map((h) => h.name).join(", ")} did not apply revision ${revision} within ${timeoutMs / 1000} s`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
