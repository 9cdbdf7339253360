/**
 * For tests: the Kubernetes-convention handler behind a plain node:http server on
 * 127.0.0.1 (port 0), over a MemoryDatastore that is also the watch source.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MemoryDatastore } from "../../datastore/memory.js";
import { ResourceStore } from "../../datastore/resources.js";
import type { AuthInfo } from "../auth.js";
import type { Datastore } from "../../datastore/types.js";
import { createK8sApiHandler } from "../k8s-api.js";

export interface TestServer {
  url: string;
  datastore: MemoryDatastore;
  store: ResourceStore;
  server: Server;
  /** Every request the server saw, as `METHOD path?query`. */
  requests: string[];
  /** Datastore watches the handler has open right now. */
  openWatches(): number;
  close(): Promise<void>;
}

export const ADMIN: AuthInfo = { user: "admin", uid: "1", groups: [], readOnly: false };
export const READER: AuthInfo = { user: "viewer", uid: "2", groups: ["read-only"], readOnly: true };

export async function startTestServer(
  auth: AuthInfo = ADMIN,
  opts: { maxWatchBuffer?: number } = {},
): Promise<TestServer> {
  const datastore = new MemoryDatastore();
  const store = new ResourceStore(datastore);
  await store.ensureBuiltins();
  let open = 0;
  const watchSource: Pick<Datastore, "watch" | "revision"> = {
    revision: () => datastore.revision(),
    watch(prefix, afterRevision, handlers) {
      const w = datastore.watch(prefix, afterRevision, handlers);
      open++;
      let closed = false;
      return {
        close() {
          if (!closed) open--;
          closed = true;
          w.close();
        },
      };
    },
  };
  const handler = createK8sApiHandler({
    store,
    watchSource,
    ...(opts.maxWatchBuffer !== undefined ? { maxWatchBuffer: opts.maxWatchBuffer } : {}),
  });
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ""} ${req.url ?? ""}`);
    handler(req, res, auth).then(
      (handled) => {
        if (!handled) {
          res.writeHead(404, { "Content-Type": "text/plain" });
          res.end("not mine\n");
        }
      },
      (err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    datastore,
    store,
    server,
    requests,
    openWatches: () => open,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await datastore.close();
    },
  };
}
