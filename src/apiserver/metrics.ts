/**
 * The API server's Prometheus metrics (one registry per server, so several servers in one
 * process — tests — do not collide). Route labels come from a fixed set, never from the path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class ApiServerMetrics {
  readonly registry = new Registry();
  readonly watchers: Gauge;
  readonly eventsDelivered: Counter;
  readonly requestDuration: Histogram;
  readonly datastoreErrors: Counter;
  readonly watchersCutOff: Counter;
  readonly cacheRevision: Gauge;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.watchers = new Gauge({
      name: "calico_apiserver_watchers",
      help: "Open watch streams served from the watch cache",
      registers,
    });
    this.eventsDelivered = new Counter({
      name: "calico_apiserver_watch_events_delivered_total",
      help: "Watch events written to watchers (rate() gives events per second)",
      registers,
    });
    this.requestDuration = new Histogram({
      name: "calico_apiserver_request_duration_seconds",
      help: "Request latency by route, method and status code (watches: until the stream ends)",
      labelNames: ["route", "method", "code"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.datastoreErrors = new Counter({
      name: "calico_apiserver_datastore_errors_total",
      help: "Datastore failures: operations that failed unavailable/internally, and watch-cache resyncs",
      labelNames: ["op"],
      registers,
    });
    this.watchersCutOff = new Counter({
      name: "calico_apiserver_watchers_cut_off_total",
      help: "Watchers disconnected because they fell too far behind",
      registers,
    });
    this.cacheRevision = new Gauge({
      name: "calico_apiserver_cache_revision",
      help: "The datastore revision the watch cache reflects",
      registers,
    });
    if (opts.defaultMetrics === true) collectDefaultMetrics({ register: this.registry });
  }
}
