import "./abort/index";
// The wasm module's exports: one line per area, each area exporting only integer-typed
// functions (see docs/design.md, "The wasm ABI").
export * from "./exports/packet";
export * from "./exports/forward";
export * from "./exports/conn";
export * from "./exports/forward-test-hooks";
export * from "./exports/stats";
export * from "./exports/sched";
export * from "./exports/datapath";
export * from "./exports/sync";
export * from "./exports/offload";
export * from "./exports/fnat";
