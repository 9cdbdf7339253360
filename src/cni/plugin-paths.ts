/** Where the compiled plugin executables are (beside this module in dist/). */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const PLUGIN_MAIN = {
  calico: join(HERE, "main-calico.js"),
  "calico-ipam": join(HERE, "main-calico-ipam.js"),
} as const;
