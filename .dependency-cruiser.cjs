// The layering of src/, checked by `npm run lint:layers` (in CI). The hot path flows
// down; control flows in from the top. A folder may import its own files and the folders
// named in its `may` list, nothing else under src/. docs/design.md ("Who may import whom")
// is the same list in prose: change both together.
//
// Each rule is named for the folder it guards, so an upward import fails with a message
// such as `error layer-io: src/io/tun.ts → src/runtime/director.ts`.

/** folder -> the folders (besides itself) it may import. */
const layers = {
  // Leaves: plain data and formats.
  config: [],
  pcap: [],
  // The wasm core and its ABI mirrors.
  core: ["config"],
  // Packet adapters: system calls and slot memory, nothing above the core.
  io: ["core"],
  // Service and destination tables, custom schedulers.
  sched: ["core", "config"],
  // The typed IPVS: owns its snapshot types, knows no ipvsadm syntax.
  balancer: ["core", "config", "sched"],
  // The exported property-testing kit.
  testing: ["core", "config", "sched", "balancer"],
  // ipvsadm's language: parse, format, save/restore, control socket, lvsadm.
  admin: ["core", "config", "sched", "balancer", "pcap"],
  // Capabilities beside the director, each in its own room.
  health: ["core", "config", "sched", "balancer", "admin"],
  sync: ["core", "config", "sched", "balancer", "admin"],
  metrics: ["core", "config", "sched", "balancer", "admin"],
  // The director, lvsd and the RS agent: assembles everything below.
  runtime: ["core", "config", "sched", "balancer", "admin", "io", "pcap", "health", "sync", "metrics"],
  // The namespace lab used by tests, demos and benches: a leaf of its own.
  lab: [],
  // The demos: a lab plus a director.
  demo: ["core", "config", "sched", "balancer", "admin", "io", "pcap", "health", "sync", "metrics", "runtime", "lab"],
};

const folders = Object.keys(layers);

const layerRules = Object.entries(layers).map(([folder, may]) => ({
  name: `layer-${folder}`,
  comment: `src/${folder} may import only ${may.length ? may.map((m) => `src/${m}`).join(", ") : "itself"} (docs/design.md, "Who may import whom")`,
  severity: "error",
  from: { path: `^src/${folder}/` },
  to: { path: "^src/", pathNot: [`^src/(${[folder, ...may].join("|")})/`] },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "folder-is-a-layer",
      comment: `every folder under src/ is one of the layers listed in .dependency-cruiser.cjs (${folders.join(", ")})`,
      severity: "error",
      from: { path: "^src/[^/]+/", pathNot: `^src/(${folders.join("|")})/` },
      to: {},
    },
    {
      name: "no-import-of-the-entry",
      comment: "src/index.ts is the package's face: nothing inside src/ imports it",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/index\\.ts$" },
    },
    {
      name: "no-circular",
      comment: "a cycle between modules makes the load order fragile",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|dist|build)/|wasm-binary\\.generated\\.ts$" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    moduleSystems: ["es6", "cjs"],
    enhancedResolveOptions: { extensions: [".ts", ".js", ".json"], conditionNames: ["import", "require", "node", "default"] },
  },
};
