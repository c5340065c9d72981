// The soak of issue 17 (test/support/soak.ts): 30 s here and in CI, 10 minutes with
// `npm run soak` (SOAK_SECONDS=600, SOAK_REPORT=1 writes docs/soak.md). No established
// connection may be lost, no new one may fail, every service's counters must equal the
// sum of its destinations', and lvsd's RSS must stay flat.

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { labSkip } from "./support/netns.js";
import { runSoak } from "./support/soak.js";

const seconds = Number(process.env.SOAK_SECONDS ?? 30);
const skip = labSkip("curl");

test(`soak: ${seconds} s of traffic through lvsd with destinations churning every 100 ms and SIGHUP every second`, {
  skip,
  timeout: (seconds + 180) * 1000,
}, async () => {
  const f = await runSoak(seconds, (line) => console.log(line));
  console.log(JSON.stringify(f));
  if (process.env.SOAK_REPORT === "1") {
    writeFileSync(
      new URL("../docs/soak.md", import.meta.url),
      `# Soak: lvsd under configuration churn

Written by \`npm run soak\` (test/soak.test.ts, test/support/soak.ts) on ${new Date().toISOString()}
(node ${process.version}, ${cpus()[0]?.model ?? "?"} x ${cpus().length}, load average at the end ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" / ")}; the machine was shared).

lvsd (NAT, TUN device) in a namespace lab with two real servers running HTTP. The client
holds ${f.held} keep-alive connections that each ask every 200 ms, and opens a new short
connection every 100 ms. Every 100 ms a destination is added, edited or removed over the
control socket (a quiesced extra destination in and out, the real servers' weights edited);
every second the rules file is rewritten (a second service in, then out) and lvsd gets SIGHUP.

| figure | value |
|---|---:|
| duration | ${f.seconds} s |
| answers on held connections | ${f.heldAnswers} |
| held connections lost | ${f.heldLost} |
| short connections made / failed | ${f.shortMade} / ${f.shortFailed} |
| churn commands (refused because a reload had undone their premise) | ${f.churnCommands} (${f.churnRefused}) |
| SIGHUP reloads | ${f.reloads} |
| services whose counters differ from the sum of their destinations' | ${f.statsMismatches.length} |
| lvsd RSS after warm-up / highest / last | ${f.rssKiB.first} / ${f.rssKiB.max} / ${f.rssKiB.last} KiB |
`,
    );
  }
  assert.equal(f.heldLost, 0, "no established connection lost");
  assert.ok(f.heldAnswers >= f.held * seconds, `the held connections kept answering (${f.heldAnswers})`);
  assert.equal(f.shortFailed, 0, `no new connection failed (of ${f.shortMade})`);
  assert.deepEqual(f.statsMismatches, [], "every service's counters are the sum of its destinations'");
  assert.ok(f.churnCommands >= seconds * 5, `the churn ran (${f.churnCommands} commands)`);
  assert.ok(f.rssKiB.last - f.rssKiB.first < 64 * 1024, `RSS flat: ${JSON.stringify(f.rssKiB)}`);
});
