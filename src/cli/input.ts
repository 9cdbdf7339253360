/** Reading `-f` inputs: a file, a directory of .yaml/.yml/.json files (-R to recurse), or `-` (stdin). */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { InputText } from "../api/codec.js";
import { UsageError } from "./usage-error.js";

const RESOURCE_FILE = /\.(ya?ml|json)$/i;

function listDir(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      if (recursive) out.push(...listDir(p, recursive));
    } else if (RESOURCE_FILE.test(name)) out.push(p);
  }
  return out;
}

export async function readInputs(
  filename: string,
  recursive: boolean,
  readStdin: () => Promise<string>,
): Promise<InputText[]> {
  if (filename === "-") return [{ source: "<stdin>", text: await readStdin() }];
  let st;
  try {
    st = statSync(filename);
  } catch {
    throw new UsageError(`Cannot read "${filename}": no such file or directory`);
  }
  const files = st.isDirectory() ? listDir(filename, recursive) : [filename];
  if (st.isDirectory() && files.length === 0) {
    throw new UsageError(
      `No .yaml, .yml or .json files in directory "${filename}"${recursive ? "" : " (use -R to recurse)"}`,
    );
  }
  return files.map((f) => ({ source: f, text: readFileSync(f, "utf8") }));
}
