/**
 * A whole `Transaction` as one nfnetlink batch (BATCH_BEGIN … BATCH_END), applied atomically by
 * the kernel exactly like `nft -f` applies the rendered script — without nft's cache fill of every
 * chain and set (0.15–0.4 s on the bench table) before it sends anything.
 *
 * Messages and flags follow what nft 1.0.6 sends (strace of its sendmsg): NEWTABLE (no EXCL:
 * `add table` is a no-op when present), DELTABLE, NEWCHAIN (base chains: type, policy, hook
 * {hooknum, priority}), DELRULE without handle (flush chain) or with one, DELCHAIN, NEWRULE
 * (CREATE|APPEND, expressions from netlink-expr.ts, the comment as rule userdata), NEWSET/DELSET,
 * DELSETELEM without elements (flush set/map), NEWSETELEM/DELSETELEM (netlink-elements.ts).
 * Sets created in the batch get an id (numbered from 1, anonymous ones included, as nft does) so
 * later messages may name them by id. Only the last message asks for an ACK: errors are always
 * reported, and one ACK per message of a 50k-rule batch would only fill the receive buffer.
 */
import {
  TABLE_NAME,
  type BaseChainSpec,
  type MapSpec,
  type Rule,
  type SetKeyType,
  type SetSpec,
  type Transaction,
  type TxOp,
} from "./model.js";
import { deepEqual } from "../../calc/tracked-map.js";
import { checkName, MAX_COMMENT_BYTES } from "./render.js";
import {
  NFT_MSG_DELSETELEM,
  NFT_MSG_NEWSETELEM,
  writeElementMessages,
  writeElementOp,
  type ElementOp,
  type ElementTarget,
} from "./netlink-elements.js";
import { NFT_SET_INTERVAL, encodeRule, udataTlv, type AnonSet } from "./netlink-expr.js";
import {
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  UnsupportedNetlinkError,
  attr,
  BatchWriter,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO_INET,
  le32,
  nested,
  strz,
  u32attr,
  type Attr,
  type BatchMemory,
  type EncodedBatch,
} from "./netlink.js";

const MSG = {
  NEWTABLE: 0,
  DELTABLE: 2,
  NEWCHAIN: 3,
  DELCHAIN: 5,
  NEWRULE: 6,
  DELRULE: 8,
  NEWSET: 9,
  DELSET: 11,
};
const TABLE_ATTR = { NAME: 1, FLAGS: 2 };
const CHAIN = { TABLE: 1, NAME: 3, HOOK: 4, POLICY: 5, TYPE: 7 };
const HOOK = { NUM: 1, PRIORITY: 2 };
const HOOKNUM = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 } as const;
const RULE = { TABLE: 1, CHAIN: 2, HANDLE: 3, USERDATA: 7 };
const SET = {
  TABLE: 1,
  NAME: 2,
  FLAGS: 3,
  KEY_TYPE: 4,
  KEY_LEN: 5,
  DATA_TYPE: 6,
  DATA_LEN: 7,
  DESC: 9,
  ID: 10,
  USERDATA: 13,
};
const NFT_SET_MAP = 0x8;
const NFT_DATA_VERDICT = 0xffffff00;
const UD_KEYBYTEORDER = 0;
const UD_DATABYTEORDER = 1;
const UD_DATA_INTERVAL = 6;
const UD_COMMENT = 7;

/** Key type, length and byte order of our named sets, as nft 1.0.6 declares them. */
const KEY: Record<SetKeyType, { type: number; len: number; byteorder: number; typeofConcat?: boolean }> = {
  ipv4_addr: { type: 7, len: 4, byteorder: 2 },
  ipv6_addr: { type: 8, len: 16, byteorder: 2 },
  "ipv4_addr . inet_proto . inet_service": { type: 0x730d, len: 12, byteorder: 0, typeofConcat: true },
  "ipv6_addr . inet_proto . inet_service": { type: 0x830d, len: 24, byteorder: 0, typeofConcat: true },
  ifname: { type: 0x29, len: 16, byteorder: 1 },
  inet_service: { type: 13, len: 2, byteorder: 2 },
};

export interface EncodedTransaction extends EncodedBatch {
  /** Sets and maps as they are after the transaction (for the next one's element encoding). */
  targets: Map<string, ElementTarget>;
}

const tableAttr = (): Attr => attr(1, strz(TABLE_NAME));

function comment(what: string, c: string): Buffer {
  if (Buffer.byteLength(c) > MAX_COMMENT_BYTES || c.includes("\0"))
    throw new UnsupportedNetlinkError(`${what} comment "${c}"`);
  return udataTlv(UD_COMMENT, strz(c));
}

function chainBody(name: string, base: BaseChainSpec | undefined): Attr[] {
  const parts = [tableAttr(), attr(CHAIN.NAME, strz(checkName("chain", name)))];
  if (base !== undefined) {
    if (!Number.isInteger(base.priority))
      throw new UnsupportedNetlinkError(`chain priority ${base.priority}`);
    parts.push(
      attr(CHAIN.TYPE, strz(base.type)),
      u32attr(CHAIN.POLICY, base.policy === "accept" ? 1 : 0),
      nested(CHAIN.HOOK, [u32attr(HOOK.NUM, HOOKNUM[base.hook]), u32attr(HOOK.PRIORITY, base.priority)]),
    );
  }
  return parts;
}

function setBody(s: SetSpec, id: number): Attr[] {
  const k = KEY[s.keyType];
  const ud = [udataTlv(UD_KEYBYTEORDER, le32(k.byteorder))];
  if (k.typeofConcat === true) ud.push(Buffer.from("030800040d0000000100", "hex"));
  if (s.comment !== undefined) ud.push(comment("set", s.comment));
  return [
    tableAttr(),
    attr(SET.NAME, strz(checkName("set", s.name))),
    u32attr(SET.FLAGS, s.interval ? NFT_SET_INTERVAL : 0),
    u32attr(SET.KEY_TYPE, k.type),
    u32attr(SET.KEY_LEN, k.len),
    u32attr(SET.ID, id),
    attr(SET.USERDATA, Buffer.concat(ud)),
  ];
}

function mapBody(m: MapSpec, id: number): Attr[] {
  const ud = [
    udataTlv(UD_KEYBYTEORDER, le32(1)),
    udataTlv(UD_DATABYTEORDER, le32(0)),
    udataTlv(UD_DATA_INTERVAL, le32(0)),
  ];
  if (m.comment !== undefined) ud.push(comment("map", m.comment));
  return [
    tableAttr(),
    attr(SET.NAME, strz(checkName("map", m.name))),
    u32attr(SET.FLAGS, NFT_SET_MAP),
    u32attr(SET.KEY_TYPE, 0x29),
    u32attr(SET.KEY_LEN, 16),
    u32attr(SET.DATA_TYPE, NFT_DATA_VERDICT),
    u32attr(SET.DATA_LEN, 0),
    u32attr(SET.ID, id),
    attr(SET.USERDATA, Buffer.concat(ud)),
  ];
}

function anonSetBody(s: AnonSet): Attr[] {
  return [
    tableAttr(),
    attr(SET.NAME, strz("__set%d")),
    u32attr(SET.FLAGS, s.flags),
    u32attr(SET.KEY_TYPE, s.keyType),
    u32attr(SET.KEY_LEN, s.keyLen),
    u32attr(SET.ID, s.id!),
    nested(SET.DESC, [u32attr(1, s.elements.length)]),
    attr(SET.USERDATA, s.udata),
  ];
}

const opText = (op: TxOp): string => {
  switch (op.op) {
    case "ensure-table":
      return "add table";
    case "delete-table":
      return "delete table";
    case "add-chain":
    case "flush-chain":
    case "delete-chain":
      return `${op.op.replace("-", " ")} ${op.chain}`;
    case "add-rule":
      return `add rule ${op.chain}${op.rule.comment === undefined ? "" : ` (comment "${op.rule.comment}")`}`;
    case "delete-rule":
      return `delete rule ${op.chain} handle ${op.handle}`;
    case "add-set":
      return `add set ${op.set.name}`;
    case "add-map":
      return `add map ${op.map.name}`;
    case "flush-set":
    case "delete-set":
    case "add-elements":
    case "delete-elements":
      return `${op.op.replace("-", " ")} ${op.set}`;
    case "flush-map":
    case "delete-map":
    case "add-map-elements":
    case "delete-map-elements":
      return `${op.op.replace("-", " ")} ${op.map}`;
  }
};

/**
 * A generous guess of the batch's size, so the writer's buffer is allocated once: growing it
 * (doubling and copying) cost ~0.15 s on a 21 MiB cold start, mostly faulting in fresh pages.
 * Pages beyond what is written are never touched, so an over-estimate costs address space only.
 */
function estimateBytes(tx: Transaction): number {
  let n = 4096;
  for (const o of tx.ops) {
    if (o.op === "add-rule") n += 512;
    else if (o.op === "add-elements" || o.op === "delete-elements") n += 256 + 48 * o.elements.length;
    else if (o.op === "add-map-elements") n += 256 + 128 * o.elements.length;
    else if (o.op === "delete-map-elements") n += 256 + 48 * o.keys.length;
    else n += 256;
  }
  return n;
}

/** A rule's expressions as written once in this transaction, and the set ids they embed. */
interface CompiledRule {
  rule: Rule;
  expressions: Buffer;
  userdata: Buffer | undefined;
  /** Named sets looked up, with the id each had (an id is per batch: a later add-set changes it). */
  ids: [string, number | undefined][];
  /** Other rule objects found structurally equal to `rule` (the dataplane shares most rules). */
  same?: Set<Rule>;
}

/**
 * Encode `tx` (pure). `memory`: where the batch buffer comes from (default: the JS heap).
 * `known` gives the sets/maps that exist before the transaction (their key
 * types, for element encoding). Throws UnsupportedNetlinkError for anything it cannot express.
 */
export function encodeTransaction(
  tx: Transaction,
  known: ReadonlyMap<string, ElementTarget>,
  firstSeq = 1,
  memory?: BatchMemory,
): EncodedTransaction {
  let seq = firstSeq;
  // Everything is written into one buffer as it is encoded (netlink.ts BatchWriter).
  const w = new BatchWriter(estimateBytes(tx), memory);
  w.endMessage(w.beginMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES));
  const beginSeq = seq++;
  /** The op index of each message, by seq - firstSeq - 1. */
  const opOfSeq: number[] = [];
  let lastStart = -1;
  const targets = new Map(known);
  /** Ids of sets created in this batch. */
  const ids = new Map<string, number>();
  let nextId = 1;
  const begin = (opIndex: number, type: number, flags: number): number => {
    opOfSeq.push(opIndex);
    lastStart = w.beginMessage((NFNL_SUBSYS_NFTABLES << 8) | type, flags, seq++, NFPROTO_INET, 0);
    return lastStart;
  };
  const push = (opIndex: number, type: number, flags: number, body: Attr[]): void => {
    const m = begin(opIndex, type, flags);
    for (const a of body) w.attr(a);
    w.endMessage(m);
  };
  /** Chain names already checked (every rule names its chain; 4,848 chains for 53,723 rules). */
  const chainNames = new Set<string>();
  const chainName = (n: string): string => {
    if (!chainNames.has(n)) {
      checkName("chain", n);
      chainNames.add(n);
    }
    return n;
  };
  /**
   * The dataplane repeats rules (53,723 rules, 8,994 distinct on the bench table; the comment is
   * a hash of the rule): a rule without anonymous sets is compiled and written once per
   * transaction, keyed by its comment and checked structurally, and its bytes copied per use.
   */
  const compiled = new Map<string, CompiledRule>();
  const compile = (rule: Rule, r: ReturnType<typeof encodeRule>): CompiledRule => {
    const used: [string, number | undefined][] = [];
    const tree = r.expressions((n) => {
      const id = ids.get(n);
      used.push([n, id]);
      return id;
    });
    const s = new BatchWriter(tree.len);
    s.attr(tree);
    return { rule, expressions: s.result(), userdata: r.userdata, ids: used };
  };
  const cachedRule = (rule: Rule): CompiledRule | undefined => {
    if (rule.comment === undefined) return undefined;
    const hit = compiled.get(rule.comment);
    if (hit === undefined) return undefined;
    if (hit.rule !== rule && hit.same?.has(rule) !== true) {
      if (!deepEqual(hit.rule, rule)) return undefined;
      (hit.same ??= new Set()).add(rule);
    }
    for (const [n, id] of hit.ids) if (ids.get(n) !== id) return undefined;
    return hit;
  };
  const R = NLM_F_REQUEST;
  const ops = tx.ops;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.op) {
      case "ensure-table":
        push(i, MSG.NEWTABLE, R, [attr(TABLE_ATTR.NAME, strz(TABLE_NAME)), u32attr(TABLE_ATTR.FLAGS, 0)]);
        break;
      case "delete-table":
        push(i, MSG.DELTABLE, R, [attr(TABLE_ATTR.NAME, strz(TABLE_NAME))]);
        targets.clear();
        ids.clear();
        break;
      case "add-chain":
        push(i, MSG.NEWCHAIN, R | NLM_F_CREATE, chainBody(op.chain, op.base));
        break;
      case "flush-chain":
        push(i, MSG.DELRULE, R, [tableAttr(), attr(RULE.CHAIN, strz(checkName("chain", op.chain)))]);
        break;
      case "delete-chain":
        push(i, MSG.DELCHAIN, R, [tableAttr(), attr(CHAIN.NAME, strz(checkName("chain", op.chain)))]);
        break;
      case "delete-rule": {
        if (!Number.isSafeInteger(op.handle) || op.handle <= 0)
          throw new UnsupportedNetlinkError(`rule handle ${op.handle}`);
        const h = Buffer.alloc(8);
        h.writeBigUInt64BE(BigInt(op.handle), 0);
        push(i, MSG.DELRULE, R, [
          tableAttr(),
          attr(RULE.CHAIN, strz(checkName("chain", op.chain))),
          attr(RULE.HANDLE, h),
        ]);
        break;
      }
      case "add-rule": {
        let c = cachedRule(op.rule);
        if (c === undefined) {
          const r = encodeRule(op.rule);
          for (const s of r.anonSets) {
            s.id = nextId++;
            push(i, MSG.NEWSET, R | NLM_F_CREATE, anonSetBody(s));
            writeElementMessages(
              w,
              () => begin(i, NFT_MSG_NEWSETELEM, R | NLM_F_CREATE),
              "__set%d",
              s.elements,
              s.id,
            );
          }
          c = compile(op.rule, r);
          if (r.anonSets.length === 0 && op.rule.comment !== undefined) compiled.set(op.rule.comment, c);
        }
        const m = begin(i, MSG.NEWRULE, R | NLM_F_CREATE | NLM_F_APPEND);
        w.string(1, TABLE_NAME);
        w.string(RULE.CHAIN, chainName(op.chain));
        w.raw(c.expressions);
        if (c.userdata !== undefined) w.bytes(RULE.USERDATA, c.userdata);
        w.endMessage(m);
        break;
      }
      case "add-set": {
        const id = nextId++;
        ids.set(op.set.name, id);
        targets.set(op.set.name, { keyType: op.set.keyType, interval: op.set.interval, map: false });
        push(i, MSG.NEWSET, R | NLM_F_CREATE, setBody(op.set, id));
        break;
      }
      case "add-map": {
        const id = nextId++;
        ids.set(op.map.name, id);
        targets.set(op.map.name, { keyType: "ifname", interval: false, map: true });
        push(i, MSG.NEWSET, R | NLM_F_CREATE, mapBody(op.map, id));
        break;
      }
      case "flush-set":
      case "flush-map": {
        const name = op.op === "flush-set" ? op.set : op.map;
        push(i, NFT_MSG_DELSETELEM, R, [attr(2, strz(checkName("set", name))), tableAttr()]);
        break;
      }
      case "delete-set":
      case "delete-map": {
        const name = op.op === "delete-set" ? op.set : op.map;
        push(i, MSG.DELSET, R, [tableAttr(), attr(SET.NAME, strz(checkName("set", name)))]);
        targets.delete(name);
        ids.delete(name);
        break;
      }
      case "add-elements":
      case "delete-elements":
      case "add-map-elements":
      case "delete-map-elements": {
        const name = "set" in op ? op.set : op.map;
        const t = targets.get(name);
        if (t === undefined) throw new UnsupportedNetlinkError(`elements of unknown set or map "${name}"`);
        const eop: ElementOp =
          op.op === "add-elements"
            ? { kind: "add", set: op.set, elements: op.elements }
            : op.op === "delete-elements"
              ? { kind: "delete", set: op.set, elements: op.elements }
              : op.op === "add-map-elements"
                ? { kind: "add-map", map: op.map, elements: op.elements }
                : { kind: "delete-map", map: op.map, keys: op.keys };
        const add = eop.kind === "add" || eop.kind === "add-map";
        const type = add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
        const flags = add ? R | NLM_F_CREATE : R;
        writeElementOp(w, () => begin(i, type, flags), checkName("set", name), ids.get(name), t, eop);
        break;
      }
    }
  }
  const seqs: number[] = [];
  if (opOfSeq.length > 0) {
    // ACK on the last message: positive confirmation that the kernel processed the batch.
    w.addFlags(lastStart, NLM_F_ACK);
    seqs.push(firstSeq + opOfSeq.length);
  }
  w.endMessage(w.beginMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES));
  return {
    bytes: w.result(),
    seqs,
    targets,
    describe: (s) => {
      if (s === beginSeq) return "the transaction's commit";
      const i = opOfSeq[s - firstSeq - 1];
      return i === undefined ? undefined : `op ${i + 1} (${opText(tx.ops[i]!)})`;
    },
  };
}
