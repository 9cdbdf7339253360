/** Reading a request body: bounded in size, JSON (or YAML) by Content-Type. */
import type { IncomingMessage } from "node:http";
import { parse as parseYaml } from "yaml";
import { statusError, StatusReason } from "./status.js";

/** Kubernetes' own limit for a request body (apiserver MaxRequestBodyBytes). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) {
    req.resume();
    throw statusError(
      StatusReason.RequestEntityTooLarge,
      `request body of ${declared} bytes exceeds ${limit}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      req.resume();
      throw statusError(StatusReason.RequestEntityTooLarge, `request body exceeds ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The media type of a Content-Type header, lower-case, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

/** Parse a body as JSON, or YAML when the Content-Type says so. Empty → undefined. */
export function parseBody(text: string, contentType: string | undefined): unknown {
  if (text.trim() === "") return undefined;
  const type = mediaType(contentType);
  try {
    if (type === "application/yaml" || type === "application/x-yaml") return parseYaml(text) as unknown;
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw statusError(
      StatusReason.BadRequest,
      `the request body is not valid ${type.includes("yaml") ? "YAML" : "JSON"}: ${(err as Error).message}`,
    );
  }
}
