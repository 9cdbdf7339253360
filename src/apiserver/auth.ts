/**
 * Who is making a request to the API server, as established by bearer-token authentication
 * (Kubernetes static-token file: `token,user,uid[,"group1,group2"]`). Handlers receive it after
 * authentication; with no token file configured every request is anonymous and allowed.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";

export interface AuthInfo {
  user: string;
  uid: string;
  groups: readonly string[];
  /** True when the token is in the `read-only` group: only GET/HEAD (and watches) are allowed. */
  readOnly: boolean;
}

/** The group that limits a token to reads. */
export const READ_ONLY_GROUP = "read-only";

/** Methods a read-only token may use (a watch is a GET). */
export const isReadMethod = (method: string | undefined): boolean =>
  method === "GET" || method === "HEAD" || method === "OPTIONS";

/** Split one CSV line (RFC 4180 quoting: `"a,b"`, `""` inside quotes is a quote). */
function parseCsvLine(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return undefined; // unterminated quote
        const c = line[i]!;
        if (c === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < line.length && line[i] !== ",") return undefined;
    } else {
      while (i < line.length && line[i] !== ",") field += line[i++];
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

export interface TokenEntry extends AuthInfo {
  token: string;
}

/**
 * Parse a Kubernetes static-token file: `token,user,uid[,"group1,group2"]` per line. Blank lines
 * and `#` comments are skipped. Errors name the line (never the token).
 */
export function parseTokenFile(text: string, source = "token file"): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = parseCsvLine(line);
    const where = `${source} line ${i + 1}`;
    if (fields === undefined) throw new Error(`Invalid ${where}: unbalanced quotes`);
    if (fields.length < 3 || fields.length > 4) {
      throw new Error(
        `Invalid ${where}: expected token,user,uid[,"group1,group2"], got ${fields.length} fields`,
      );
    }
    const [token, user, uid, groupField] = fields as [string, string, string, string | undefined];
    if (token === "" || user === "")
      throw new Error(`Invalid ${where}: the token and user must not be empty`);
    if (seen.has(token)) throw new Error(`Invalid ${where}: duplicate token (user "${user}")`);
    seen.add(token);
    const groups = (groupField ?? "")
      .split(",")
      .map((g) => g.trim())
      .filter((g) => g !== "");
    entries.push({ token, user, uid, groups, readOnly: groups.includes(READ_ONLY_GROUP) });
  });
  return entries;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/** Bearer-token authentication against a static token list. */
export class TokenAuthenticator {
  private readonly byDigest = new Map<string, { d: Buffer; info: AuthInfo }>();

  constructor(entries: readonly TokenEntry[]) {
    for (const { token, ...info } of entries) {
      const d = digest(token);
      this.byDigest.set(d.toString("hex"), {
        d,
        info: Object.freeze({ ...info, groups: Object.freeze([...info.groups]) }),
      });
    }
  }

  static fromFile(path: string): TokenAuthenticator {
    return new TokenAuthenticator(parseTokenFile(readFileSync(path, "utf8"), path));
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The identity of `req`'s bearer token, or undefined (missing, malformed or unknown). */
  authenticate(req: IncomingMessage): AuthInfo | undefined {
    const h = req.headers.authorization;
    if (h === undefined) return undefined;
    const m = /^Bearer +(\S+) *$/i.exec(h);
    if (m === null) return undefined;
    // Look up by digest: the comparison time does not depend on how much of a token matched.
    const d = digest(m[1]!);
    const hit = this.byDigest.get(d.toString("hex"));
    if (hit === undefined || !timingSafeEqual(hit.d, d)) return undefined;
    return hit.info;
  }
}

/** Everyone, when no token file is configured. */
export const ANONYMOUS: AuthInfo = Object.freeze({
  user: "system:anonymous",
  uid: "",
  groups: Object.freeze(["system:unauthenticated"]),
  readOnly: false,
});
