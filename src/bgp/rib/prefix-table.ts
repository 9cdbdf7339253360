/**
 * The Loc-RIB's index: `PrefixKey` → value in two open-addressing hash tables (IPv4, IPv6)
 * whose keys live inline in typed arrays. At a million prefixes a JS `Map` was most of the
 * receive path: every key is a heap object (an IPv4 key above 2^31 is a heap number, an IPv6
 * key a string), so each lookup chases pointers to compare keys, each insert adds an
 * old-to-new reference for the scavenger, and the keys themselves are a million objects for
 * the collector. Here a lookup hashes and compares integers in one array, and the collector
 * sees one values array per family.
 *
 * Linear probing with backward-shift deletion (no tombstones). Iteration order is the slot
 * order, not insertion order; do not insert or delete while iterating (collect first).
 */
import { keyWords, type PrefixKey, wordsKey } from "./prefix-key.js";

const MIN_CAPACITY = 16;
/** Grow when more than 3/4 of the slots are used. */
const MAX_LOAD = 0.75;

/** One family's table: `words` 32-bit words of address per slot, plus the prefix length. */
class Table<V> {
  readonly #words: number;
  readonly #seed: number;
  #cap = MIN_CAPACITY;
  #mask = MIN_CAPACITY - 1;
  /** 0 = empty, else prefix length + 1. */
  #lens = new Uint8Array(MIN_CAPACITY);
  #addr: Int32Array;
  #vals: (V | undefined)[] = slots<V>(MIN_CAPACITY);
  size = 0;

  constructor(words: number, seed: number) {
    this.#words = words;
    this.#seed = seed;
    this.#addr = new Int32Array(MIN_CAPACITY * words);
  }

  /** Slot of the key in `k` (words) with length `len`, or -1 - the empty slot where it would
   * go. */
  find(k: Int32Array, len: number): number {
    const w = this.#words;
    let i = hashAt(k, 0, w, len, this.#seed) & this.#mask;
    for (;;) {
      const l = this.#lens[i]!;
      if (l === 0) return -1 - i;
      if (l === len + 1 && same(this.#addr, i * w, k, w)) return i;
      i = (i + 1) & this.#mask;
    }
  }

  value(slot: number): V {
    return this.#vals[slot] as V;
  }

  setValue(slot: number, v: V): void {
    this.#vals[slot] = v;
  }

  /** Insert a key known to be absent; `free` is the empty slot `find` returned for it. */
  insert(k: Int32Array, len: number, v: V, free: number): void {
    if ((this.size + 1) / this.#cap > MAX_LOAD) {
      this.#grow();
      this.#place(k, 0, len, v);
    } else {
      this.#lens[free] = len + 1;
      for (let j = 0; j < this.#words; j++) this.#addr[free * this.#words + j] = k[j]!;
      this.#vals[free] = v;
    }
    this.size++;
  }

  #place(k: Int32Array, at: number, len: number, v: V): void {
    const w = this.#words;
    let i = hashAt(k, at, w, len, this.#seed) & this.#mask;
    while (this.#lens[i] !== 0) i = (i + 1) & this.#mask;
    this.#lens[i] = len + 1;
    for (let j = 0; j < w; j++) this.#addr[i * w + j] = k[at + j]!;
    this.#vals[i] = v;
  }

  #grow(): void {
    const lens = this.#lens;
    const addr = this.#addr;
    const vals = this.#vals;
    const old = this.#cap;
    this.#cap = old * 2;
    this.#mask = this.#cap - 1;
    this.#lens = new Uint8Array(this.#cap);
    this.#addr = new Int32Array(this.#cap * this.#words);
    this.#vals = slots<V>(this.#cap);
    for (let i = 0; i < old; i++) {
      const l = lens[i]!;
      if (l !== 0) this.#place(addr, i * this.#words, l - 1, vals[i] as V);
    }
  }

  /** Remove the entry in `slot`, shifting later entries of its probe run back (Knuth's
   * algorithm R), so lookups never need tombstones. */
  removeAt(slot: number): void {
    const w = this.#words;
    const mask = this.#mask;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const l = this.#lens[j]!;
      if (l === 0) break;
      const home = hashAt(this.#addr, j * w, w, l - 1, this.#seed) & mask;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      this.#lens[hole] = l;
      for (let x = 0; x < w; x++) this.#addr[hole * w + x] = this.#addr[j * w + x]!;
      this.#vals[hole] = this.#vals[j];
      hole = j;
    }
    this.#lens[hole] = 0;
    this.#vals[hole] = undefined;
    this.size--;
  }

  clear(): void {
    if (this.size === 0) return;
    if (this.#cap <= 4096) {
      // Small (one UPDATE's worth): keep the arrays, empty them.
      this.#lens.fill(0);
      this.#vals.fill(undefined);
      this.size = 0;
      return;
    }
    this.#cap = MIN_CAPACITY;
    this.#mask = MIN_CAPACITY - 1;
    this.#lens = new Uint8Array(MIN_CAPACITY);
    this.#addr = new Int32Array(MIN_CAPACITY * this.#words);
    this.#vals = slots<V>(MIN_CAPACITY);
    this.size = 0;
  }

  *slots(): IterableIterator<number> {
    const lens = this.#lens;
    for (let i = 0; i < lens.length; i++) if (lens[i] !== 0) yield i;
  }

  lenAt(slot: number): number {
    return this.#lens[slot]! - 1;
  }

  wordAt(slot: number, j: number): number {
    return this.#addr[slot * this.#words + j]!;
  }
}

/** `n` empty slots (a holey array: V8 keeps it in fast elements). */
function slots<V>(n: number): (V | undefined)[] {
  return new Array<V | undefined>(n);
}

/** A multiplicative mix of the words and the length (murmur3's finalizer at the end). The
 * seed differs per table: a table filled in another table's slot order (the prefixes one
 * operation touches, when a peer with a million routes goes down) would otherwise receive its
 * keys sorted by hash, the worst case of linear probing (that took seconds). */
function hashAt(k: Int32Array, at: number, w: number, len: number, seed: number): number {
  let h = Math.imul((len + 1) ^ seed, 0x9e3779b1);
  for (let j = 0; j < w; j++) h = Math.imul(h ^ k[at + j]!, 0x85ebca6b) ^ (h >>> 13);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function same(a: Int32Array, at: number, k: Int32Array, w: number): boolean {
  for (let j = 0; j < w; j++) if (a[at + j] !== k[j]) return false;
  return true;
}

/** `PrefixKey` → V, the subset of `Map` the RIB uses. */
/** Seeds for new tables: distinct per table, the same sequence in every run (iteration order
 * stays reproducible). */
let nextSeed = 0x2545f491;

export class PrefixTable<V> {
  readonly #v4 = new Table<V>(1, (nextSeed = Math.imul(nextSeed, 0x5851f42d) + 1));
  readonly #v6 = new Table<V>(4, (nextSeed = Math.imul(nextSeed, 0x5851f42d) + 1));
  /** The parsed key of the last operation (no allocation per lookup). */
  readonly #k = new Int32Array(4);
  #len = 0;
  /** The last lookup, valid until the table changes shape (insert, delete, clear). */
  #lastKey: PrefixKey | undefined;
  #lastT: Table<V> | undefined;
  #lastSlot = -1;

  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** Parse `key` into #k/#len; returns its family's table. */
  #parse(key: PrefixKey): Table<V> {
    const lenf = keyWords(key, this.#k);
    if (lenf < 256) {
      this.#len = lenf;
      return this.#v4;
    }
    this.#len = lenf - 256;
    return this.#v6;
  }

  /** Find `key` (its table in #lastT, the result in #lastSlot), remembering it: the RIB's
   * `get` then `set` of one key probes once. */
  #find(key: PrefixKey): number {
    if (key !== this.#lastKey || this.#lastT === undefined) {
      const t = this.#parse(key);
      this.#lastT = t;
      this.#lastSlot = t.find(this.#k, this.#len);
      this.#lastKey = key;
    }
    return this.#lastSlot;
  }

  get(key: PrefixKey): V | undefined {
    const slot = this.#find(key);
    return slot < 0 ? undefined : this.#lastT!.value(slot);
  }

  has(key: PrefixKey): boolean {
    return this.#find(key) >= 0;
  }

  set(key: PrefixKey, v: V): this {
    const slot = this.#find(key);
    const t = this.#lastT!;
    if (slot >= 0) t.setValue(slot, v);
    else {
      // #k/#len still hold this key: #find parsed it, or the last parse was of the same key.
      this.#parse(key);
      t.insert(this.#k, this.#len, v, -1 - slot);
      this.#lastT = undefined;
    }
    return this;
  }

  delete(key: PrefixKey): boolean {
    const slot = this.#find(key);
    if (slot < 0) return false;
    this.#lastT!.removeAt(slot);
    this.#lastT = undefined;
    return true;
  }

  clear(): void {
    this.#lastT = undefined;
    this.#v4.clear();
    this.#v6.clear();
  }

  *values(): IterableIterator<V> {
    for (const t of [this.#v4, this.#v6]) for (const s of t.slots()) yield t.value(s);
  }

  *keys(): IterableIterator<PrefixKey> {
    for (const [k] of this.entries()) yield k;
  }

  *entries(): IterableIterator<[PrefixKey, V]> {
    for (const s of this.#v4.slots())
      yield [wordsKey(this.#v4.lenAt(s), this.#v4.wordAt(s, 0), 0, 0, 0), this.#v4.value(s)];
    const t = this.#v6;
    for (const s of t.slots())
      yield [
        wordsKey(t.lenAt(s) + 256, t.wordAt(s, 0), t.wordAt(s, 1), t.wordAt(s, 2), t.wordAt(s, 3)),
        t.value(s),
      ];
  }

  [Symbol.iterator](): IterableIterator<[PrefixKey, V]> {
    return this.entries();
  }
}
