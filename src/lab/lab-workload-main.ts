/**
 * The lab's workload process: the probe agent (probe-agent.ts) run detached, so it outlives
 * the `calicoctl lab` command that started it. The probe agent exits when its stdin ends (its
 * parent, the prober, went away); a lab workload has no such parent, so it gets a stdin that
 * never ends and stops only on SIGTERM/SIGINT (or `lab down`).
 */
import { PassThrough } from "node:stream";
import { probeAgentMain } from "./probe-agent.js";

Object.defineProperty(process, "stdin", { value: new PassThrough(), configurable: true });
probeAgentMain(process.argv.slice(2));
