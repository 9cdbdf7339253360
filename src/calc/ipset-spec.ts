/**
 * What an IP set is for, and its stable ID (reference/calico.md §3.4): `s:<hash>` of the
 * canonical selector for selector sets, `n:<hash>` of `<selector id>,<protocol>,<port name>`
 * for named-port sets. Rules that need the same set share it.
 */
import { calicoHashId, parseSelector } from "../selector/index.js";
import type { IPSetType } from "./types.js";

export interface IPSetSpec {
  id: string;
  type: IPSetType;
  /** Canonical selector whose matches feed the set. */
  selector: string;
  /** For `ip-port` sets: the port name and, when the rule gives one, its protocol. */
  namedPort?: { name: string; protocol?: number };
  description: string;
}

export function selectorSet(selector: string): IPSetSpec {
  return { id: parseSelector(selector).uniqueId(), type: "net", selector, description: selector };
}

export function namedPortSet(selector: string, name: string, protocol: number | undefined): IPSetSpec {
  const selId = parseSelector(selector).uniqueId();
  const proto = protocol === undefined ? "" : String(protocol);
  const spec: IPSetSpec = {
    id: calicoHashId("n", `${selId},${proto},${name}`),
    type: "ip-port",
    selector,
    namedPort: protocol === undefined ? { name } : { name, protocol },
    description: `${selector} + named port ${name}${protocol === undefined ? "" : `/${protocol}`}`,
  };
  return spec;
}

/** A selector no item can match: rules we cannot enforce use it so that they match nothing. */
export const MATCH_NOTHING = "!all()";
