/** Moved to src/lab (the node tour uses it too); tests import it from here. */
export * from "../../src/lab/agent-status.js";
