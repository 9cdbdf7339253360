/**
 * Wait until a calico-node has programmed everything up to a datastore revision, by reading
 * the status file it writes after every apply (`--status-file`).
 */
import { readFileSync } from "node:fs";
import type { OneHostFabric } from "./one-host-fabric.js";

export interface AgentStatusFile {
  ready: boolean;
  /** The datastore revision the last successful apply covered. */
  appliedRevision: number;
}

export function readAgentStatus(path: string): AgentStatusFile | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as AgentStatusFile;
  } catch {
    return undefined;
  }
}

export async function waitForAgent(
  fabric: OneHostFabric,
  revision: number,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = readAgentStatus(fabric.statusFile);
    if (s !== undefined && s.ready && s.appliedRevision >= revision) return;
    if (fabric.agent !== undefined && (fabric.agent.exitCode !== null || fabric.agent.signalCode !== null)) {
      throw new Error(
        `calico-node exited (${fabric.agent.exitCode ?? fabric.agent.signalCode}):\n${fabric.agentLog}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `calico-node did not program revision ${revision} within ${timeoutMs} ms (status: ${JSON.stringify(s)}):\n${fabric.agentLog.slice(-5000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
