/**
 * Opening the datastore from a plugin. A plugin is a short-lived process started for every
 * container, so start-up time counts: a `sqlite:` URL loads only the sqlite driver; any other
 * URL loads the general opener (datastore/open.ts, which also pulls in the etcd and HTTP
 * clients). Failing to open is the spec's code 11 (try again later).
 */
import { resolve } from "node:path";
import type { Datastore } from "../datastore/types.js";
import { CniCode, CniError } from "./types.js";

/**
 * The file of a `sqlite:/abs/path` or `sqlite:///abs/path` URL, the forms `calicoctl cni install`
 * writes; undefined for anything else, which then goes through the general opener (its
 * `sqlitePathFromUrl` handles every form, and the unit test checks the two agree).
 */
export function absoluteSqlitePath(url: string): string | undefined {
  const text = url.trim();
  if (/^sqlite:\/\/\//i.test(text)) return text.slice("sqlite://".length);
  if (/^sqlite:\/[^/]/i.test(text)) return resolve(text.slice("sqlite:".length));
  return undefined;
}

export async function openPluginDatastore(
  url: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<Datastore> {
  const setting = url ?? env.CALICO_DATASTORE;
  try {
    const path = setting !== undefined ? absoluteSqlitePath(setting) : undefined;
    if (path !== undefined) {
      const { SqliteDatastore } = await import("../datastore/sqlite.js");
      return new SqliteDatastore(path);
    }
    const { openDatastore } = await import("../datastore/open.js");
    return await openDatastore(setting, { env });
  } catch (e) {
    const bad = (e as { code?: string }).code === "DATASTORE_BAD_URL";
    throw new CniError(
      bad ? CniCode.INVALID_NETWORK_CONFIG : CniCode.TRY_AGAIN_LATER,
      `Cannot open the datastore ${JSON.stringify(setting ?? "(default)")}: ${(e as Error).message}`,
      undefined,
      { cause: e },
    );
  }
}
