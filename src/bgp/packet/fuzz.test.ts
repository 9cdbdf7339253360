// Fuzzing, after GoBGP's Fuzz* tests: random bytes and mutated valid messages (bit flips,
// truncations, length-field edits, splices) must only ever give a message, a DecodedUpdate
// or a BgpError — never another exception, never a hang. The committed corpus
// (testdata/fuzz-corpus/*.hex: seeds plus every input that ever crashed the decoder) is
// replayed first and used as mutation seeds. A failure prints the input's hex: add it to the
// corpus with the fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  BgpEncodeError,
  BgpError,
  type CodecContext,
  MessageReader,
  decodeMessage,
  encodeMessage,
} from "./index.js";
import { toHexString } from "./fixtures.js";

// dist/src/bgp/packet → the source tree's corpus.
const CORPUS = join(
  fileURLToPath(new URL("../../../../", import.meta.url)),
  "src/bgp/packet/testdata/fuzz-corpus",
);
const CASES = Number(process.env.BGP_FUZZ_CASES ?? 20000);
const SEED = Number(process.env.BGP_FUZZ_SEED ?? 0x5eed);

function loadCorpus(): { name: string; bytes: Uint8Array }[] {
  return readdirSync(CORPUS)
    .filter((f) => f.endsWith(".hex"))
    .sort()
    .map((name) => {
      const text = readFileSync(join(CORPUS, name), "utf8")
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .join("")
        .replace(/\s+/g, "");
      return { name, bytes: Uint8Array.from(Buffer.from(text, "hex")) };
    });
}

/** xorshift32: reproducible from SEED. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** Decode every way the session does; throw only if the codec misbehaves. */
function check(input: Uint8Array, r: (n: number) => number): "message" | "error" {
  let outcome: "message" | "error" = "error";
  for (const ctx of [{ as4: true }, { as4: false }] satisfies CodecContext[]) {
    try {
      const d = decodeMessage(input, ctx);
      outcome = "message";
      // Whatever decodes must re-encode (or be refused as too big), and on a 4-octet session
      // decoding that again gives the same message.
      let again: Uint8Array | undefined;
      try {
        again = encodeMessage(d.message, ctx);
      } catch (e) {
        if (!(e instanceof BgpEncodeError)) throw e;
      }
      if (again !== undefined && ctx.as4) assert.deepEqual(decodeMessage(again, ctx).message, d.message);
    } catch (e) {
      if (!(e instanceof BgpError)) throw e;
      assert.ok(e.notificationCode >= 1 && e.notificationCode <= 7);
    }
    // The stream reader, in random chunks, twice over (a second message after the first).
    const reader = new MessageReader(ctx);
    const stream = Buffer.concat([input, input]);
    for (let i = 0; i < stream.length;) {
      const n = 1 + r(64);
      const res = reader.push(stream.subarray(i, i + n));
      assert.ok(reader.buffered < 4096);
      if (res.error !== undefined) break;
      i += n;
    }
  }
  return outcome;
}

function mutate(seed: Uint8Array, r: (n: number) => number, seeds: Uint8Array[]): Uint8Array {
  const b = new Uint8Array(seed);
  const rounds = 1 + r(4);
  let out = b;
  for (let k = 0; k < rounds; k++) {
    switch (r(7)) {
      case 0: // bit flip
        if (out.length > 0) {
          const i = r(out.length);
          out[i] = (out[i] ?? 0) ^ (1 << r(8));
        }
        break;
      case 1: // truncate
        out = out.subarray(0, r(out.length + 1));
        break;
      case 2: // random byte (biased to the body, where the interesting lengths live)
        if (out.length > 19) out[19 + r(out.length - 19)] = r(256);
        break;
      case 3: {
        // edit the header length field to something near the truth
        if (out.length >= 18) {
          const len = Math.max(0, out.length + r(9) - 4);
          out[16] = len >> 8;
          out[17] = len & 0xff;
        }
        break;
      }
      case 4: {
        // edit a one- or two-octet "length" somewhere in the body to an extreme or near value
        if (out.length > 21) {
          const i = 19 + r(out.length - 20);
          const v = [0, 1, 0xff, (out[i] ?? 0) + 1, (out[i] ?? 0) - 1][r(5)] ?? 0;
          out[i] = v & 0xff;
        }
        break;
      }
      case 5: {
        // append bytes from another seed, fixing the header length (splice)
        const other = seeds[r(seeds.length)] ?? new Uint8Array(0);
        const tail = other.subarray(19 + r(Math.max(1, other.length - 19)));
        const joined = new Uint8Array(out.length + tail.length);
        joined.set(out);
        joined.set(tail, out.length);
        out = joined.subarray(0, 4096);
        if (out.length >= 18) {
          out[16] = out.length >> 8;
          out[17] = out.length & 0xff;
        }
        break;
      }
      default: // insert or delete one byte inside the body and fix the header length
        if (out.length > 19) {
          const i = 19 + r(out.length - 19);
          const next =
            r(2) === 0
              ? new Uint8Array([...out.subarray(0, i), r(256), ...out.subarray(i)])
              : new Uint8Array([...out.subarray(0, i), ...out.subarray(i + 1)]);
          next[16] = next.length >> 8;
          next[17] = next.length & 0xff;
          out = next;
        }
    }
  }
  return out;
}

void test("the fuzz corpus replays without a crash", () => {
  const corpus = loadCorpus();
  assert.ok(corpus.length >= 10, `corpus at ${CORPUS}`);
  const r = rng(SEED);
  for (const { name, bytes } of corpus) {
    try {
      check(bytes, r);
    } catch (e) {
      assert.fail(`${name}: ${String(e)}`);
    }
  }
});

void test(`${CASES} random and mutated inputs give a message or a BgpError, quickly`, () => {
  const seeds = loadCorpus().map((c) => c.bytes);
  const r = rng(SEED);
  const started = Date.now();
  let messages = 0;
  for (let i = 0; i < CASES; i++) {
    let input: Uint8Array;
    const kind = r(10);
    if (kind === 0) {
      input = Uint8Array.from({ length: r(64) }, () => r(256));
    } else if (kind === 1) {
      // a valid header over random bytes
      const body = Uint8Array.from({ length: r(200) }, () => r(256));
      input = new Uint8Array(19 + body.length);
      input.fill(0xff, 0, 16);
      input[16] = input.length >> 8;
      input[17] = input.length & 0xff;
      input[18] = 1 + r(5);
      input.set(body, 19);
    } else {
      input = mutate(seeds[r(seeds.length)] ?? new Uint8Array(0), r, seeds);
    }
    try {
      if (check(input, r) === "message") messages++;
    } catch (e) {
      assert.fail(
        `case ${i} (seed ${SEED}) crashed on ${toHexString(input)}: ${e instanceof Error ? e.stack : String(e)}`,
      );
    }
  }
  const ms = Date.now() - started;
  assert.ok(ms < 20_000, `took ${ms} ms`);
  // The mutations must reach past the header checks often enough to be worth running.
  assert.ok(messages > CASES / 20, `only ${messages} of ${CASES} inputs decoded`);
});
