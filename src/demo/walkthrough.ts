// `npm run demo [-- nat|dr|tun|ecmp]`: the classic LVS walkthroughs in network namespaces.
// The dispatching lives in dispatch.ts; this file only ties it to the process.

import { runWalkthrough } from "./dispatch.js";

runWalkthrough(process.argv.slice(2), {
  uid: process.getuid?.(),
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
