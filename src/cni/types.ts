/**
 * CNI protocol types (CNI spec 1.1.0, with the older result formats still asked for): the
 * versions we speak, the well-known error codes, the plugin error, and the version-neutral
 * result both plugins build before it is rendered in the caller's `cniVersion` (result.ts).
 */
import { CalicoError } from "../errors.js";

/** Every spec version both plugins accept, oldest first (VERSION answers with this list). */
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const CURRENT_VERSION = "1.1.0";

/** The spec's well-known error codes ("Error" section); 100+ are ours. */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS: the plugin cannot serve ADD requests. */
  PLUGIN_NOT_AVAILABLE: 50,
  /** STATUS: not available, and existing containers may have limited connectivity. */
  PLUGIN_NOT_AVAILABLE_LIMITED: 51,
  /** Ours: anything without a well-known code (a kernel command failed, a datastore error). */
  INTERNAL: 100,
  /** Ours: the IP pools have no free address for this request. */
  ADDRESSES_EXHAUSTED: 101,
  /** Ours: CHECK found the attachment different from what ADD set up. */
  CHECK_FAILED: 102,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode];

export const CNI_ERROR = "CNI_ERROR";

/** An error the plugin reports as the spec's error JSON: `{cniVersion, code, msg, details}`. */
export class CniError extends CalicoError {
  constructor(
    readonly cniCode: CniCode,
    message: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(CNI_ERROR, message, options);
  }
}

export const isCniError = (e: unknown): e is CniError => e instanceof CniError;

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION";
export const CNI_COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"];

// ---- the version-neutral result -------------------------------------------------------------

export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The netns path for interfaces inside the container. */
  sandbox?: string;
}

export interface ResultIP {
  /** Address with prefix, e.g. `198.19.0.5/32`. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface ResultDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIP[];
  routes: ResultRoute[];
  dns: ResultDNS;
}

/** One `cni.dev/valid-attachments` entry of a GC request. */
export interface Attachment {
  containerID: string;
  ifname: string;
}
