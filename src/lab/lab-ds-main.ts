/**
 * Helper process for lab-datastore.ts: `node lab-ds-main.js URL`, a JSON request on stdin, the
 * JSON reply on stdout; errors on stderr with exit code 1. Run inside the lab's fabric namespace.
 */
import { serveLabDsRequest, type LabDsRequest } from "./lab-datastore.js";

const chunks: Buffer[] = [];
for await (const c of process.stdin) chunks.push(c as Buffer);
try {
  const req = JSON.parse(Buffer.concat(chunks).toString("utf8")) as LabDsRequest;
  process.stdout.write(JSON.stringify(await serveLabDsRequest(process.argv[2] ?? "", req)));
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
