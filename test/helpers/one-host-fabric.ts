/** The one-host fabric lives in src/lab (the node tour uses it too); tests import it from here. */
export * from "../../src/lab/one-host-fabric.js";
