#!/usr/bin/env node
/** The `calico-ipam` CNI IPAM plugin executable. */
import { runExecutable } from "./entry.js";

process.exitCode = await runExecutable("calico-ipam");
