/** IPAM errors: stable codes, messages naming the pool or address (STYLE.md, Errors). */
import { CalicoError, hasCode } from "../errors.js";

export const IPAMErrorCode = {
  POOL_NOT_FOUND: "IPAM_POOL_NOT_FOUND",
  POOL_DISABLED: "IPAM_POOL_DISABLED",
  POOL_EXHAUSTED: "IPAM_POOL_EXHAUSTED",
  ADDRESS_IN_USE: "IPAM_ADDRESS_IN_USE",
  ADDRESS_RESERVED: "IPAM_ADDRESS_RESERVED",
  NOT_IN_POOL: "IPAM_NOT_IN_POOL",
  INVALID_ARGUMENT: "IPAM_INVALID_ARGUMENT",
  RETRIES_EXHAUSTED: "IPAM_RETRIES_EXHAUSTED",
} as const;
export type IPAMErrorCode = (typeof IPAMErrorCode)[keyof typeof IPAMErrorCode];

export class IPAMError extends CalicoError {
  declare readonly code: IPAMErrorCode;
  constructor(code: IPAMErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export const isPoolNotFound = (e: unknown): boolean => hasCode(e, IPAMErrorCode.POOL_NOT_FOUND);
export const isPoolDisabled = (e: unknown): boolean => hasCode(e, IPAMErrorCode.POOL_DISABLED);
export const isPoolExhausted = (e: unknown): boolean => hasCode(e, IPAMErrorCode.POOL_EXHAUSTED);
export const isAddressInUse = (e: unknown): boolean => hasCode(e, IPAMErrorCode.ADDRESS_IN_USE);
export const isAddressReserved = (e: unknown): boolean => hasCode(e, IPAMErrorCode.ADDRESS_RESERVED);
export const isNotInPool = (e: unknown): boolean => hasCode(e, IPAMErrorCode.NOT_IN_POOL);
export const isRetriesExhausted = (e: unknown): boolean => hasCode(e, IPAMErrorCode.RETRIES_EXHAUSTED);
