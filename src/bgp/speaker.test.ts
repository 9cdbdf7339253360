/**
 * Two in-process speakers over loopback TCP, both active (each connects to the other), as in a
 * Calico mesh where neither side is passive. Their outgoing connects are delayed by a random
 * few milliseconds so the connection collision (RFC 4271 §6.8) happens in every order: ours
 * completing before, during and after the peer's connection reaches Established. Once, one
 * session of 190 in a 20-speaker mesh stayed Idle for minutes ("BGPOpen in Established", then
 * Cease / Connection Collision Resolution on every reconnect): a connect that completed after
 * Established replaced the Established connection.
 */
import { afterEach, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { BgpSpeaker } from "./speaker.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Delay every outgoing `net.connect` by a random time up to `maxMs` (restored after). */
function delayConnects(maxMs: number): void {
  const real = net.connect;
  const patched = (...args: Parameters<typeof net.connect>): net.Socket => {
    const s = new net.Socket();
    setTimeout(() => s.connect(args[0] as unknown as net.NetConnectOpts), Math.random() * maxMs);
    return s;
  };
  net.connect = patched as typeof net.connect;
  cleanups.push(() => {
    net.connect = real;
  });
}

async function speaker(routerId: string): Promise<BgpSpeaker> {
  const s = new BgpSpeaker({
    asn: 64512,
    routerId,
    listen: { host: "127.0.0.1", port: 0 },
    programKernel: false,
    holdTime: 9,
    connectRetryTime: 1,
    idleHoldTime: 0.1,
    maxIdleHoldTime: 1,
  });
  await s.start();
  // stop() waits for the socket's close with an unref'd 1.5 s timer: keep the loop alive.
  cleanups.push(() => Promise.race([s.stop(), sleep(2000)]));
  return s;
}

const ROUNDS = 12;

it(`two active speakers connecting at once end Established and stay so (${ROUNDS} rounds, random connect delays)`, async () => {
  for (let round = 1; round <= ROUNDS; round++) {
    delayConnects(round % 3 === 0 ? 0 : 40);
    // Alternate which speaker has the higher BGP identifier.
    const [idA, idB] = round % 2 ? ["198.18.0.3", "198.18.0.6"] : ["198.18.0.6", "198.18.0.3"];
    const a = await speaker(idA);
    const b = await speaker(idB);
    a.addPeer({ address: "127.0.0.1", asn: 64512, port: b.port });
    b.addPeer({ address: "127.0.0.1", asn: 64512, port: a.port });
    const states = () => [a, b].map((s) => s.status().peers[0]!);
    const end = Date.now() + 10_000;
    while (!states().every((p) => p.state === "Established")) {
      if (Date.now() > end)
        assert.fail(`round ${round}: not both Established after 10 s: ${JSON.stringify(states())}`);
      await sleep(20);
    }
    // Stays up: a late connect must not take the session down afterwards.
    await sleep(round === ROUNDS ? 1500 : 300);
    for (const p of states()) {
      assert.equal(p.state, "Established", `round ${round}: ${JSON.stringify(p)}`);
      assert.equal(p.lastDown, undefined, `round ${round}: left Established once: ${JSON.stringify(p)}`);
    }
    for (const c of cleanups.splice(0).reverse()) await c();
  }
});
