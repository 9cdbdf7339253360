/** The datastore component's public surface (DESIGN.md §2; docs/datastore.md). */
export * from "./types.js";
export { MemoryDatastore, type MemoryDatastoreOptions } from "./memory.js";
export { SqliteDatastore, SQLITE_SCHEMA_VERSION, type SqliteDatastoreOptions } from "./sqlite.js";
export {
  openDatastore,
  defaultDatastoreUrl,
  defaultDatastorePath,
  describeDatastoreSetting,
  resolveDatastoreUrl,
  registerDatastoreDriver,
  datastoreUrlForms,
  sqlitePathFromUrl,
  DATASTORE_ENV,
  type DatastoreDriver,
  type DatastoreSettingSource,
} from "./open.js";
export { compareKeys, prefixUpperBound } from "./key-range.js";
export { EtcdDatastore, parseEtcdUrl, openEtcdDatastore } from "./etcd.js";
export { HttpDatastore, parseHttpDatastoreUrl, openHttpDatastore } from "./http.js";
