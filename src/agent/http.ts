/**
 * The agent's HTTP endpoints: `/liveness` and `/readiness` on healthHost:healthPort (Felix's
 * health port, 9099), Prometheus `/metrics` on the metrics port (9091). 200 when good, 503
 * when not, with a small JSON body saying why.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { AgentHealth } from "./agent.js";

export interface HttpEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function listen(host: string, port: number, handler: Handler): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host === "" ? undefined : host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

const path = (req: IncomingMessage): string => (req.url ?? "/").split("?")[0]!;

export function healthHandler(health: () => AgentHealth): Handler {
  return (req, res) => {
    const h = health();
    const p = path(req);
    const good = p === "/liveness" ? h.live : p === "/readiness" ? h.ready : undefined;
    if (good === undefined) {
      res.statusCode = 404;
      res.end("not found: try /liveness or /readiness\n");
      return;
    }
    res.statusCode = good ? 200 : 503;
    res.setHeader("content-type", "application/json");
    res.end(`${JSON.stringify(h)}\n`);
  };
}

export function metricsHandler(registry: Registry): Handler {
  return async (req, res) => {
    if (path(req) !== "/metrics") {
      res.statusCode = 404;
      res.end("not found: try /metrics\n");
      return;
    }
    const body = await registry.metrics();
    res.setHeader("content-type", registry.contentType);
    res.end(body);
  };
}
