/**
 * `calicoctl datastore migrate lock | unlock` (reference/calico.md §8): set ClusterInformation
 * `default` spec.datastoreReady false / true. Components pause while it is false, which is
 * what makes `ipam check -o` + `ipam release --from-report` safe.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

async function setReady(ctx: CliContext, ready: boolean): Promise<void> {
  const store = await ctx.store();
  await store.ensureBuiltins(); // ClusterInformation `default` exists in every initialised store
  await store.update("ClusterInformation", "default", undefined, (cur) => ({
    ...cur,
    spec: { ...cur.spec, datastoreReady: ready },
  }));
  ctx.out(ready ? "Datastore unlocked." : "Datastore locked.");
}

export function registerDatastoreCommands(program: Command, ctx: CliContext): void {
  const migrate = program
    .command("datastore")
    .description("Datastore administration")
    .command("migrate")
    .description("Lock or unlock the datastore (ClusterInformation spec.datastoreReady)");
  migrate
    .command("lock")
    .description("Set datastoreReady=false: Calico components pause until unlocked")
    .action(async () => setReady(ctx, false));
  migrate
    .command("unlock")
    .description("Set datastoreReady=true")
    .action(async () => setReady(ctx, true));
}
