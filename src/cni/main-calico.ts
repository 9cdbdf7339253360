#!/usr/bin/env node
/** The `calico` CNI plugin executable: a runtime runs it with CNI_* set and the config on stdin. */
import { runExecutable } from "./entry.js";

process.exitCode = await runExecutable("calico");
