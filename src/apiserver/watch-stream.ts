/**
 * One HTTP watcher: streams a cache subscription as NDJSON (one JSON object per line):
 *
 *   {"type":"put","kv":{…},"prev":{…}}         an event (snapshot entries are puts without prev)
 *   {"type":"delete","key":…,"revision":N,"prev":{…}}
 *   {"type":"in-sync","revision":N}            the backlog (snapshot or replay) is complete
 *   {"type":"heartbeat","revision":N}          nothing for you up to N; the connection is alive
 *   {"type":"error","code":…,"message":…}      the stream ends for good (reserved: not sent yet)
 *
 * A slow watcher never delays the others: the cache hands it events synchronously and they go
 * into this watcher's own queue; the socket is written only while it accepts data (no
 * buffering beyond one write once `write()` reports backpressure). Past `maxQueuedEvents` or
 * `maxQueuedBytes` queued — or blocked for longer than `stallMs` — the watcher is cut off (the
 * connection is destroyed; the client resumes from its last revision or re-lists).
 */
import type { ServerResponse } from "node:http";
import type { WatchEvent } from "../datastore/types.js";
import type { Subscription, WatchCache } from "./watch-cache.js";

export interface WatchStreamLimits {
  maxQueuedEvents: number;
  maxQueuedBytes: number;
  /** Cut off a watcher whose socket has accepted nothing for this long while data waits. */
  stallMs: number;
}

export interface WatchStreamHooks {
  delivered(events: number): void;
  cutOff(reason: string): void;
  closed(s: WatchStream): void;
}

/** Each event is serialised once, however many watchers it goes to. */
const lineCache = new WeakMap<WatchEvent, Buffer>();
export function eventLine(e: WatchEvent): Buffer {
  let b = lineCache.get(e);
  if (b === undefined) {
    b = Buffer.from(JSON.stringify(e) + "\n");
    lineCache.set(e, b);
  }
  return b;
}

const jsonLine = (o: unknown): Buffer => Buffer.from(JSON.stringify(o) + "\n");

export class WatchStream {
  private sub: Subscription | undefined;
  private backlog: readonly WatchEvent[] = [];
  private backlogIdx = 0;
  private inSyncSent = false;
  private syncRevision = 0;
  /** Highest revision handed to this watcher (for heartbeats). */
  private revision = 0;
  private queue: Buffer[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private blockedSince: number | undefined;
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: WatchStreamLimits,
    private readonly hooks: WatchStreamHooks,
  ) {
    res.on("close", () => this.finish());
  }

  /** Subscribe to the cache (throws REVISION_COMPACTED etc. before anything is written). */
  start(cache: WatchCache, prefix: string, afterRevision: number | undefined, heartbeatMs: number): void {
    this.sub = cache.subscribe(prefix, afterRevision, {
      onEvents: (events) => this.enqueue(events),
      // The cache closes only when the server (or its datastore) goes away: end the stream
      // without an error line, so the client reconnects (to this server later, or another).
      onClose: () => this.end(),
    });
    this.backlog = this.sub.backlog;
    this.syncRevision = this.sub.revision;
    this.revision = this.sub.revision;
    this.res.writeHead(200, {
      "content-type": "application/x-ndjson",
      "cache-control": "no-store",
      "x-calico-heartbeat-ms": String(heartbeatMs),
    });
    this.res.flushHeaders();
    this.pump();
  }

  get isLive(): boolean {
    return this.inSyncSent && !this.done;
  }

  /** Called periodically: cut off when stalled; heartbeat when idle (cacheRevision ≥ 0). */
  tick(now: number, cacheRevision: number): void {
    if (this.done) return;
    if (this.blockedSince !== undefined && now - this.blockedSince > this.limits.stallMs) {
      this.cut(`stalled for more than ${this.limits.stallMs} ms`);
      return;
    }
    if (
      cacheRevision < 0 ||
      !this.inSyncSent ||
      this.blockedSince !== undefined ||
      this.queueHead < this.queue.length
    )
      return;
    this.revision = Math.max(this.revision, cacheRevision);
    this.writeLine(jsonLine({ type: "heartbeat", revision: this.revision }));
  }

  /** End the stream cleanly (server shutdown) with an optional last line. */
  end(last?: unknown): void {
    if (this.done) return;
    if (last !== undefined && this.blockedSince === undefined) this.res.write(jsonLine(last));
    this.res.end();
    this.finish();
  }

  private enqueue(events: readonly WatchEvent[]): void {
    if (this.done) return;
    for (const e of events) {
      const line = eventLine(e);
      this.queue.push(line);
      this.queuedBytes += line.length;
    }
    const last = events[events.length - 1];
    if (last !== undefined) this.revision = last.type === "put" ? last.kv.modRevision : last.revision;
    const queued = this.queue.length - this.queueHead;
    if (queued > this.limits.maxQueuedEvents || this.queuedBytes > this.limits.maxQueuedBytes) {
      this.cut(
        `more than ${this.limits.maxQueuedEvents} events or ${this.limits.maxQueuedBytes} bytes queued`,
      );
      return;
    }
    this.pump();
  }

  private pump(): void {
    while (!this.done && this.blockedSince === undefined) {
      let line: Buffer;
      let events = 0;
      if (this.backlogIdx < this.backlog.length) {
        line = eventLine(this.backlog[this.backlogIdx++]!);
        events = 1;
      } else if (!this.inSyncSent) {
        this.inSyncSent = true;
        this.backlog = [];
        line = jsonLine({ type: "in-sync", revision: this.syncRevision });
      } else if (this.queueHead < this.queue.length) {
        line = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = EMPTY;
        this.queuedBytes -= line.length;
        events = 1;
        if (this.queueHead === this.queue.length) {
          this.queue = [];
          this.queueHead = 0;
        }
      } else {
        return;
      }
      if (events > 0) this.hooks.delivered(events);
      this.writeLine(line);
    }
  }

  private writeLine(line: Buffer): void {
    if (!this.res.write(line)) {
      this.blockedSince = Date.now();
      this.res.once("drain", () => {
        this.blockedSince = undefined;
        this.pump();
      });
    }
  }

  private cut(reason: string): void {
    if (this.done) return;
    this.hooks.cutOff(reason);
    this.res.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.sub?.cancel();
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.backlog = [];
    this.hooks.closed(this);
  }
}

const EMPTY = Buffer.alloc(0);
