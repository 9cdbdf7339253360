/**
 * The agent's Prometheus metrics, named after Felix's where Felix has one (so dashboards built
 * for Felix find them). One registry per agent, so several agents in one process (tests) do
 * not collide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** How often the nodejs_eventloop_lag_* metrics sample the event loop (ms): a wake-up each. */
const EVENT_LOOP_SAMPLE_MS = 1000;
import type { DesiredState } from "../calc/types.js";
import type { SyncStatus } from "./syncer.js";

const RESYNC_STATE: Record<SyncStatus, number> = { WaitForDatastore: 1, ResyncInProgress: 2, InSync: 3 };

export class AgentMetrics {
  readonly registry = new Registry();
  readonly applyDuration: Histogram<"full">;
  readonly applyErrors: Counter;
  readonly resyncs: Counter;
  readonly endpoints: Gauge;
  readonly policies: Gauge;
  readonly profiles: Gauge;
  readonly ipSets: Gauge;
  readonly routes: Gauge;
  readonly inSync: Gauge;
  readonly resyncState: Gauge;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.applyDuration = new Histogram({
      name: "felix_int_dataplane_apply_time_seconds",
      help: "Time to apply one update to the dataplane (full: a read-back-and-repair apply)",
      labelNames: ["full"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.applyErrors = new Counter({
      name: "felix_int_dataplane_failures",
      help: "Dataplane applies that failed (each is retried as a full apply)",
      registers,
    });
    this.resyncs = new Counter({
      name: "felix_resyncs_started",
      help: "Full resyncs started: the first apply, periodic refreshes and datastore re-lists",
      registers,
    });
    this.endpoints = new Gauge({
      name: "felix_active_local_endpoints",
      help: "Local workload and host endpoints",
      registers,
    });
    this.policies = new Gauge({
      name: "felix_active_local_policies",
      help: "Policies that apply to at least one local endpoint",
      registers,
    });
    this.profiles = new Gauge({ name: "felix_active_local_profiles", help: "Active profiles", registers });
    this.ipSets = new Gauge({
      name: "felix_ipsets_calico",
      help: "IP sets the active rules need",
      registers,
    });
    this.routes = new Gauge({ name: "felix_routes", help: "Routes the agent programs", registers });
    this.inSync = new Gauge({
      name: "felix_in_sync",
      help: "1 when the datastore syncer is in sync, else 0",
      registers,
    });
    this.resyncState = new Gauge({
      name: "felix_resync_state",
      help: "Datastore sync state: 1 WaitForDatastore, 2 ResyncInProgress, 3 InSync",
      registers,
    });
    // The event-loop lag sampler wakes the process every `precision` ms (prom-client's
    // default is 10: 100 wake-ups a second on an idle agent, every host, all the time).
    if (opts.defaultMetrics === true)
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  setStatus(s: SyncStatus): void {
    this.resyncState.set(RESYNC_STATE[s]);
    this.inSync.set(s === "InSync" ? 1 : 0);
  }

  setState(state: DesiredState): void {
    this.endpoints.set(state.endpoints.size);
    this.policies.set(state.policies.size);
    this.profiles.set(state.profiles.size);
    this.ipSets.set(state.ipSets.size);
    this.routes.set(state.routes.size);
  }
}
