/**
 * BGP community values as Calico writes them: standard `aa:nn` (RFC 1997, 16 bits each) or
 * large `aa:nn:mm` (RFC 8092, 32 bits each).
 */
const STANDARD = /^(\d+):(\d+)$/;
const LARGE = /^(\d+):(\d+):(\d+)$/;

export const COMMUNITY_HINT =
  "a community aa:nn (each 0-65535) or a large community aa:nn:mm (each 0-4294967295)";

/** Undefined when `value` is a valid community; otherwise why not. */
export function communityProblem(value: string): string | undefined {
  const std = STANDARD.exec(value);
  if (std !== null) {
    return std.slice(1).every((n) => Number(n) <= 0xffff)
      ? undefined
      : "standard community parts must be 0-65535";
  }
  const large = LARGE.exec(value);
  if (large !== null) {
    return large.slice(1).every((n) => Number(n) <= 0xffffffff)
      ? undefined
      : "large community parts must be 0-4294967295";
  }
  return `must be ${COMMUNITY_HINT}`;
}

export const isCommunityValue = (value: string): boolean => STANDARD.test(value) || LARGE.test(value);
