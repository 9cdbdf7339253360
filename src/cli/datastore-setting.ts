/** Which datastore calicoctl talks to (docs/cli.md, "Datastore setting"). */
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { DATASTORE_ENV } from "../datastore/open.js";
import { UsageError } from "./usage-error.js";

export const DEFAULT_CONFIG_FILE = "/etc/calico/calicoctl.cfg";

export interface DatastoreFlags {
  datastore?: string;
  config?: string;
}

/**
 * `--datastore` > `CALICO_DATASTORE` > calicoctl.cfg (`spec.datastore`, or Calico's
 * `datastoreType: etcdv3` + `etcdEndpoints`) > Calico's `DATASTORE_TYPE=etcdv3` +
 * `ETCD_ENDPOINTS` > undefined (the driver default).
 */
export function resolveDatastoreSetting(flags: DatastoreFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.datastore !== undefined) return flags.datastore;
  const fromEnv = env[DATASTORE_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const cfgPath = flags.config ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (cfgPath !== undefined) {
    let cfg: unknown;
    try {
      cfg = parseYaml(readFileSync(cfgPath, "utf8"));
    } catch (err) {
      throw new UsageError(`Cannot read config file "${cfgPath}": ${(err as Error).message}`);
    }
    const spec = (cfg as { spec?: Record<string, unknown> } | null)?.spec ?? {};
    if (typeof spec.datastore === "string") return spec.datastore;
    if (spec.datastoreType === "etcdv3" && typeof spec.etcdEndpoints === "string") {
      return etcdUrl(spec.etcdEndpoints);
    }
    if (spec.datastoreType !== undefined && spec.datastoreType !== "etcdv3") {
      throw new UsageError(
        `Config file "${cfgPath}": datastoreType ${JSON.stringify(spec.datastoreType)} is not supported; use etcdv3 or spec.datastore`,
      );
    }
  }
  if (env.DATASTORE_TYPE === "etcdv3" && env.ETCD_ENDPOINTS !== undefined) return etcdUrl(env.ETCD_ENDPOINTS);
  return undefined;
}

/** Calico's `ETCD_ENDPOINTS=http://a:2379,http://b:2379` → `etcd://a:2379,b:2379`. */
export function etcdUrl(endpoints: string): string {
  const hosts = endpoints
    .split(",")
    .map((e) =>
      e
        .trim()
        .replace(/^https?:\/\//, "")
        .replace(/\/$/, ""),
    )
    .filter((e) => e !== "");
  return `etcd://${hosts.join(",")}`;
}
