/** version: client and cluster versions, laid out as calicoctl prints them. */
import { execFileSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { isResourceNotFound } from "../../datastore/resources.js";
import { CALICO_TS_VERSION } from "../../version.js";
import type { CliContext } from "../context.js";

function gitCommit(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return execFileSync("git", ["-C", here, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

export function registerVersionCommand(program: Command, ctx: CliContext): void {
  program
    .command("version")
    .description("Show client and cluster versions")
    .action(async () => {
      let cluster = "unknown";
      let clusterType = "unknown";
      try {
        const info = await (await ctx.store()).get("ClusterInformation", "default");
        if (typeof info.spec.calicoVersion === "string") cluster = info.spec.calicoVersion;
        if (typeof info.spec.clusterType === "string") clusterType = info.spec.clusterType;
      } catch (e) {
        if (!isResourceNotFound(e)) throw e;
      }
      ctx.out(
        [
          `Client Version:    v${CALICO_TS_VERSION}`,
          `Git commit:        ${gitCommit()}`,
          `Cluster Version:   ${cluster}`,
          `Cluster Type:      ${clusterType}`,
        ].join("\n"),
      );
    });
}
