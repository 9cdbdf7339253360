/** Entry point of the probe agent process (see probe-agent.ts). */
import { probeAgentMain } from "./probe-agent.js";

probeAgentMain(process.argv.slice(2));
