import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "testing/index": "src/testing/index.ts",
    "cli/lvsadm": "src/admin/lvsadm-cli.ts",
    "cli/lvsd": "src/runtime/lvsd-cli.ts",
    "cli/lvs-rs-agent": "src/runtime/rs-agent-cli.ts",
  },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts" } },
  platform: "node",
  target: "node20",
  sourcemap: true,
  clean: true,
  // One chunk holds what the entries share (the scheduler registry above all): lvs-wasm and
  // lvs-wasm/testing must see the same registerScheduler, in ESM and in CJS alike.
  splitting: true,
  shims: true,
  // The testing kit hands users fast-check arbitraries: it must share their fast-check, not bundle one.
  external: ["fast-check"],
});
