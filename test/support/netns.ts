// The namespace lab for tests. The lab itself lives in src/lab/ (the benchmarks and the
// demo build the same topologies); this file re-exports it and adds the test-side gate.

import { skipUnless } from "./tools.js";

export * from "../../src/lab/index.js";

/**
 * `skip` value for a test that builds labs: needs root, iproute2 and the Python that the lab
 * pings with, plus whatever else is named. Under CI=true a missing tool throws.
 */
export function labSkip(...moreTools: string[]): false | string {
  return skipUnless("root", "ip", "ss", "/usr/bin/python3", ...moreTools);
}
