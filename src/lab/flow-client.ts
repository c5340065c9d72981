// A client for failure tests, run inside the lab's client namespace:
//   node --import tsx src/lab/flow-client.ts URL_BIG URL_SHORT LONG_COUNT BYTES RATE SHORT_MS SECONDS
// It holds LONG_COUNT slow downloads of URL_BIG open at once (each read at RATE bytes/s, its
// body checked by SHA-256 against BYTES zero bytes, as the lab's servers send), and opens one
// short connection to URL_SHORT every SHORT_MS ms for SECONDS seconds. It prints one line per
// result, with milliseconds since its start, so a test can put each next to its own events:
//   short <ms> <body | ERR:reason>
//   long <id> <ms> ok | long <id> <ms> broken <reason>
//   done
// A download that makes no progress for 15 s is broken (the flow was lost somewhere).

import { createHash } from "node:crypto";
import { Agent, get } from "node:http";

const STALL_MS = 15_000;

const [bigUrl, shortUrl, longText, bytesText, rateText, shortText, secondsText] = process.argv.slice(2);
const longCount = Number(longText);
const bytes = Number(bytesText);
const rate = Number(rateText);
const shortMs = Number(shortText);
const seconds = Number(secondsText);
if (![longCount, bytes, rate, shortMs, seconds].every((n) => Number.isFinite(n) && n >= 0) || !bigUrl || !shortUrl) {
  process.stderr.write("usage: flow-client URL_BIG URL_SHORT LONG_COUNT BYTES RATE SHORT_MS SECONDS\n");
  process.exit(2);
}

const start = performance.now();
const now = () => Math.round(performance.now() - start);
const say = (line: string) => process.stdout.write(`${line}\n`);
const expected = createHash("sha256").update(Buffer.alloc(bytes)).digest("hex");
// One connection per request: every download and every short request is its own TCP flow.
const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

function slowDownload(id: number): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    let received = 0;
    let lastProgress = performance.now();
    const hash = createHash("sha256");
    const finish = (line: string) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      say(`long ${id} ${now()} ${line}`);
      resolve();
    };
    const request = get(bigUrl, { agent }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        finish(`broken status-${response.statusCode}`);
        return;
      }
      response.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        lastProgress = performance.now();
        // Read at `rate`: pause for as long as this chunk should have taken.
        response.pause();
        setTimeout(() => response.resume(), (chunk.length / rate) * 1000);
      });
      response.on("end", () => {
        const digest = hash.digest("hex");
        finish(received === bytes && digest === expected ? "ok" : `broken bytes-${received}-digest-${digest === expected ? "ok" : "bad"}`);
      });
      response.on("aborted", () => finish(`broken aborted-after-${received}`));
      response.on("error", (e) => finish(`broken ${e.message.replace(/\s+/g, "-")}`));
    });
    request.on("error", (e) => finish(`broken ${e.message.replace(/\s+/g, "-")}`));
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgress > STALL_MS) {
        request.destroy();
        finish(`broken stalled-after-${received}`);
      }
    }, 1000);
  });
}

function shortRequest(): Promise<void> {
  return new Promise((resolve) => {
    const at = now();
    const request = get(shortUrl, { agent, timeout: 10_000 }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (c: string) => {
        body += c;
      });
      response.on("end", () => {
        say(`short ${at} ${response.statusCode === 200 ? body.trim() : `ERR:status-${response.statusCode}`}`);
        resolve();
      });
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (e) => {
      say(`short ${at} ERR:${e.message.replace(/\s+/g, "-")}`);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const longs = Array.from({ length: longCount }, (_, i) => slowDownload(i));
  const shorts: Promise<void>[] = [];
  while (now() < seconds * 1000) {
    shorts.push(shortRequest());
    await new Promise((r) => setTimeout(r, shortMs));
  }
  await Promise.all([...longs, ...shorts]);
  say("done");
}

void main();
