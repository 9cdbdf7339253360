/**
 * A map that knows which keys really changed since the last flush: it remembers each touched
 * key's value at the last flush and, on flush, reports only keys whose value now differs
 * (deep comparison). An object added and removed between flushes is not reported.
 */
export class TrackedMap<K, V> {
  readonly map = new Map<K, V>();
  readonly #baseline = new Map<K, V | undefined>();

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined && deepEqual(old, value)) return;
    if (!this.#baseline.has(key)) this.#baseline.set(key, old);
    this.map.set(key, value);
  }

  delete(key: K): void {
    if (!this.map.has(key)) return;
    if (!this.#baseline.has(key)) this.#baseline.set(key, this.map.get(key));
    this.map.delete(key);
  }

  /** Adds the keys that differ from the last flush to `into`, and starts a new period. */
  flushInto(into: Set<K>): void {
    for (const [k, old] of this.#baseline) if (!deepEqual(old, this.map.get(k))) into.add(k);
    this.#baseline.clear();
  }
}

/** Structural equality of plain data: primitives (bigint too), arrays, plain objects, Sets, Maps. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Set) {
    if (!(b instanceof Set) || a.size !== b.size) return false;
    for (const x of a) if (!b.has(x)) return false;
    return true;
  }
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
