/** The pure policy/route calculation (DESIGN.md §2): datastore values in, desired state out. */
export * from "./types.js";
export { CalcGraph, type CalcGraphOptions } from "./calc-graph.js";
