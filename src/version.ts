/** The calico-ts release; `test/version.test.ts` keeps it equal to package.json's. */
export const CALICO_TS_VERSION = "0.1.0";
