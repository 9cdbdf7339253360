/**
 * One URL-like setting picks the datastore for every client (agent, CNI plugin, calicoctl):
 * the explicit argument (calicoctl's `--datastore`) > `$CALICO_DATASTORE` > the default sqlite
 * file. Drivers register by scheme, so a new driver is one `registerDatastoreDriver` call.
 */
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { Datastore } from "./types.js";
import { DatastoreError, DatastoreErrorCode } from "./types.js";
import { MemoryDatastore } from "./memory.js";
import { SqliteDatastore } from "./sqlite.js";
import { ETCD_URL_FORMS, openEtcdDatastore } from "./etcd.js";
import { HTTP_URL_FORMS, openHttpDatastore } from "./http.js";

export const DATASTORE_ENV = "CALICO_DATASTORE";

export interface DatastoreDriver {
  /** The accepted forms, for help and error text, e.g. `sqlite:<path>`. */
  forms: string[];
  /** Open `url` (its scheme is this driver's); throw DatastoreError BAD_URL if malformed. */
  open(url: string): Promise<Datastore>;
}

const drivers = new Map<string, DatastoreDriver>();

/** Add (or replace) the driver for `scheme` (lower case, without the colon). */
export function registerDatastoreDriver(scheme: string, driver: DatastoreDriver): void {
  drivers.set(scheme.toLowerCase(), driver);
}

/** Every accepted form, in registration order. */
export function datastoreUrlForms(): string[] {
  const forms = new Set<string>();
  for (const d of drivers.values()) for (const f of d.forms) forms.add(f);
  return [...forms];
}

function badUrl(value: string, why: string): DatastoreError {
  return new DatastoreError(
    DatastoreErrorCode.BAD_URL,
    `Invalid datastore setting ${JSON.stringify(value)}: ${why}. Accepted forms: ${datastoreUrlForms().join(", ")}`,
  );
}

/** The sqlite file a datastore URL names, or undefined for other schemes. Throws BAD_URL. */
export function sqlitePathFromUrl(url: string): string | undefined {
  if (!/^sqlite:/i.test(url)) return undefined;
  const rest = url.slice("sqlite:".length);
  if (rest.startsWith("//")) {
    let p = rest.slice(2);
    if (p.toLowerCase().startsWith("localhost/")) p = p.slice("localhost".length);
    if (!p.startsWith("/")) {
      throw badUrl(
        url,
        "sqlite:// must be followed by an absolute path, as in sqlite:///var/lib/calico/calico-ts.db",
      );
    }
    return p;
  }
  if (rest === "") throw badUrl(url, "sqlite: needs a file path");
  if (rest === "~" || rest.startsWith("~/")) return join(homedir(), rest.slice(1));
  return resolve(rest);
}

registerDatastoreDriver("memory", {
  forms: ["memory:", "memory://<name>"],
  open(url) {
    const rest = url.slice("memory:".length);
    if (rest === "" || rest === "//") return Promise.resolve(new MemoryDatastore());
    if (rest.startsWith("//") && !rest.slice(2).includes("/")) {
      return Promise.resolve(new MemoryDatastore({ name: rest.slice(2) }));
    }
    return Promise.reject(badUrl(url, "memory stores are written memory: or memory://<name>"));
  },
});

registerDatastoreDriver("sqlite", {
  forms: ["sqlite:<path>", "sqlite:///<absolute path>"],
  // eslint-disable-next-line @typescript-eslint/require-await -- turns throws into rejections
  async open(url) {
    return new SqliteDatastore(sqlitePathFromUrl(url)!);
  },
});

// etcd://[user:password@]host:port[,host:port] (plain) and etcds://…[?ca=&cert=&key=] (TLS);
// credentials and TLS files fall back to Calico's ETCD_* variables (etcd.ts, parseEtcdUrl).
const etcdDriver: DatastoreDriver = {
  forms: ETCD_URL_FORMS,
  // eslint-disable-next-line @typescript-eslint/require-await -- turns throws into rejections
  async open(url) {
    return openEtcdDatastore(url, { badUrl: (why) => badUrl(url, why) });
  },
};
registerDatastoreDriver("etcd", etcdDriver);
registerDatastoreDriver("etcds", etcdDriver);
// http(s)://[token@]host:port[?token=&ca=] → calico-apiserver's raw key API (http.ts); the token
// and CA file fall back to $CALICO_DATASTORE_TOKEN and $CALICO_DATASTORE_CA.
const httpDriver: DatastoreDriver = {
  forms: HTTP_URL_FORMS,
  // eslint-disable-next-line @typescript-eslint/require-await -- turns throws into rejections
  async open(url) {
    return openHttpDatastore(url, { badUrl: (shown, why) => badUrl(shown, why) });
  },
};
registerDatastoreDriver("http", httpDriver);
registerDatastoreDriver("https", httpDriver);

/** The default sqlite file: system-wide for root, per user otherwise (XDG base directories). */
export function defaultDatastorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return "/var/lib/calico/calico-ts.db";
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec says relative values are invalid and must be ignored.
  const base = xdg !== undefined && xdg !== "" && isAbsolute(xdg) ? xdg : join(homedir(), ".local", "share");
  return join(base, "calico-ts", "calico-ts.db");
}

export function defaultDatastoreUrl(env: NodeJS.ProcessEnv = process.env): string {
  return `sqlite://${defaultDatastorePath(env)}`;
}

export type DatastoreSettingSource = "argument" | typeof DATASTORE_ENV | "default";

/** Which setting wins: explicit argument > $CALICO_DATASTORE > default. */
export function resolveDatastoreUrl(
  url?: string,
  env: NodeJS.ProcessEnv = process.env,
): { url: string; source: DatastoreSettingSource } {
  if (url !== undefined && url.trim() !== "") return { url: url.trim(), source: "argument" };
  const fromEnv = env[DATASTORE_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return { url: fromEnv.trim(), source: DATASTORE_ENV };
  return { url: defaultDatastoreUrl(env), source: "default" };
}

/** Help text for the setting (calicoctl --help, agent usage). */
export function describeDatastoreSetting(env: NodeJS.ProcessEnv = process.env): string {
  return [
    `Datastore: the --datastore argument, else $${DATASTORE_ENV}, else ${defaultDatastoreUrl(env)}.`,
    `Forms: ${datastoreUrlForms().join(", ")}.`,
  ].join("\n");
}

/**
 * Open the datastore named by `url` (or the environment, or the default). Throws DatastoreError
 * BAD_URL for a malformed setting, UNAVAILABLE when the store cannot be opened.
 */
export async function openDatastore(
  url?: string,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<Datastore> {
  const { url: value } = resolveDatastoreUrl(url, opts.env ?? process.env);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value);
  const driver = m !== null ? drivers.get(m[1]!.toLowerCase()) : undefined;
  if (m === null || driver === undefined) {
    const hint =
      value.startsWith("/") || value.startsWith(".") || value.endsWith(".db")
        ? `; a file path is written sqlite:${value}`
        : m !== null
          ? `; unknown scheme "${m[1]}:"`
          : "";
    throw badUrl(value, `not a datastore URL${hint}`);
  }
  return driver.open(value);
}
