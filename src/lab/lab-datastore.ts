/**
 * How `calicoctl lab` reaches the lab's datastore. A sqlite file is opened directly. etcd runs
 * inside the lab's fabric namespace (on the bridge address, where every host reaches it), which
 * the root namespace cannot reach, so each request runs in a short-lived helper process inside
 * that namespace (lab-ds-main.ts) that answers one JSON request with one JSON reply.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { commandIn } from "../dataplane/netns.js";
import { openDatastore } from "../datastore/open.js";
import { ResourceStore } from "../datastore/resources.js";
import { CalicoError } from "../errors.js";

const HELPER = join(dirname(fileURLToPath(import.meta.url)), "lab-ds-main.js");

export type LabDsRequest =
  { op: "apply"; resources: unknown[] } | { op: "list"; kind: string } | { op: "revision" };

export interface LabDsReply {
  revision: number;
  items?: unknown[];
}

/** Serve one request against the datastore at `url` (in this process's namespace). */
export async function serveLabDsRequest(url: string, req: LabDsRequest): Promise<LabDsReply> {
  const ds = await openDatastore(url);
  try {
    const store = new ResourceStore(ds);
    switch (req.op) {
      case "apply":
        await store.ensureBuiltins();
        for (const r of req.resources) await store.apply(r);
        return { revision: await ds.revision() };
      case "list": {
        const { items, revision } = await store.list(req.kind);
        return { revision, items };
      }
      case "revision":
        return { revision: await ds.revision() };
    }
  } finally {
    await ds.close();
  }
}

/** Send `req` to the datastore at `url`, from inside `netns` when given. */
export async function labDatastore(
  url: string,
  netns: string | undefined,
  req: LabDsRequest,
): Promise<LabDsReply> {
  if (netns === undefined) return serveLabDsRequest(url, req);
  const argv = commandIn(netns, process.execPath, [HELPER, url]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0)
        reject(
          new CalicoError(
            "LAB_DATASTORE_FAILED",
            `The lab datastore ${url} (reached from netns ${netns}) failed a ${req.op} request: ${err.trim() || `exit ${code}`}`,
          ),
        );
      else resolve(JSON.parse(out) as LabDsReply);
    });
    child.stdin.end(JSON.stringify(req));
  });
}
