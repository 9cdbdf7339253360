/**
 * Packet-mark bits (reference/calico.md §1.5): allocated low bit first from the mark mask
 * (`nftablesMarkMask`, default 0xffff0000). Policy chains never accept or drop on Allow/Pass;
 * they set one of these bits and return, and the endpoint chain decides.
 */
export const MARK_MASK = 0xffff0000;
export const ACCEPT_MARK = 0x10000;
export const PASS_MARK = 0x20000;
