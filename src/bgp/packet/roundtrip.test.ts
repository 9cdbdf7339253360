// Property tests: decode(encode(m)) = m for arbitrary valid messages of every type, on 4-octet
// and 2-octet AS sessions, and the bytes are a fixed point of encode∘decode.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { bgpMessage, updateMessage } from "./arbitraries.js";
import { type CodecContext, MessageReader, decodeMessage, encodeMessage } from "./index.js";

for (const ctx of [{ as4: true }, { as4: false }] satisfies CodecContext[]) {
  void test(`decode(encode(m)) = m for every message type (as4 ${ctx.as4})`, () => {
    fc.assert(
      fc.property(bgpMessage(ctx), (m) => {
        const bytes = encodeMessage(m, ctx);
        const d = decodeMessage(bytes, ctx);
        assert.deepEqual(d.message, m);
        assert.equal(d.update?.discarded, undefined);
        assert.deepEqual(encodeMessage(d.message, ctx), bytes);
      }),
      { numRuns: 3000 },
    );
  });

  void test(`UPDATEs with every attribute round-trip through the streaming reader (as4 ${ctx.as4})`, () => {
    fc.assert(
      fc.property(
        fc.array(updateMessage(ctx), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 600 }),
        (ms, chunk) => {
          const stream = Buffer.concat(ms.map((m) => encodeMessage(m, ctx)));
          const r = new MessageReader(ctx);
          const got = [];
          for (let i = 0; i < stream.length; i += chunk) {
            const res = r.push(stream.subarray(i, i + chunk));
            assert.equal(res.error, undefined);
            got.push(...res.messages.map((x) => x.message));
          }
          assert.deepEqual(got, ms);
        },
      ),
      { numRuns: 500 },
    );
  });
}
