// Rules files (ipvsadm -S output, ipvsadm -R input): every save-line form survives
// parse -> format byte for byte, and a bad line is named with nothing returned.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRules, formatRules, splitRulesLine, portNamesFromText } from "../src/index.js";
import { ConfigError } from "../src/config/types.js";

const PORT_NAMES = portNamesFromText("http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\nsip 5060/udp\n");
const OPTIONS = { portNames: PORT_NAMES };

// Each service block as ipvsadm -S -n prints it, already in ipvsadm's sort order.
const SAVE_NUMERIC = `${[
  "-A -t 10.0.0.1:80 -s rr",
  "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1",
  "-a -t 10.0.0.1:80 -r 10.1.0.2:80 -i -w 0 --tun-type ipip",
  "-a -t 10.0.0.1:80 -r 10.1.0.3:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum",
  "-a -t 10.0.0.1:80 -r 10.1.0.4:80 -i -w 3 --tun-type gue --tun-port 6081 --tun-csum",
  "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -i -w 4 --tun-type gue --tun-port 6082 --tun-remcsum",
  "-a -t 10.0.0.1:80 -r 10.1.0.6:80 -i -w 5 --tun-type gre --tun-nocsum",
  "-a -t 10.0.0.1:80 -r 10.1.0.7:80 -i -w 6 --tun-type gre --tun-csum",
  "-a -t 10.0.0.1:80 -r 10.1.0.8:8080 -m -w 65535",
  "-a -t 10.0.0.1:80 -r [2001:db8::9]:80 -i -w 1 --tun-type ipip",
  "-A -t 10.0.0.2:443 -s wlc -p 300",
  "-A -t 10.0.0.3:443 -s lc -p 1800 -M 255.255.255.0",
  "-a -t 10.0.0.3:443 -r 10.1.0.1:443 -m -w 1 -x 100 -y 10",
  "-A -t 10.0.0.4:0 -s sh -p 60 -b sh-fallback,sh-port",
  "-A -t 10.0.0.5:80 -s mh -b mh-fallback",
  "-A -t 10.0.0.6:80 -s wrr -b flag-1,flag-2,flag-3",
  "-A -u 10.0.0.7:5060 -s rr -p 300 --pe sip -o",
  "-a -u 10.0.0.7:5060 -r 10.1.0.1:5060 -m -w 1",
  "-A --sctp-service 10.0.0.8:3868 -s rr",
  "-A -t [2001:db8::1]:80 -s rr",
  "-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m -w 1",
  "-A -t [2001:db8::2]:80 -s rr -p 120 -M 64",
  "-A -f 1 -s rr",
  "-a -f 1 -r 10.1.0.1:0 -g -w 1",
  "-a -f 1 -r 10.1.0.2:8080 -m -w 1",
  "-A -f 2 -6 -s wlc -p 300 -M 96",
  "-a -f 2 -6 -r [2001:db8::20]:0 -g -w 1",
].join("\n")}\n`;

test("round trip, -S -n: every save-line form comes back byte for byte", () => {
  const rules = parseRules(SAVE_NUMERIC, OPTIONS);
  assert.equal(formatRules(rules, { numeric: true, ...OPTIONS }), SAVE_NUMERIC);
});

test("round trip, -S (port names): names are read back and written again", () => {
  // Sorted as ipvsadm sorts: TCP (6) before UDP (17), then by address.
  const named = "-A -t 10.0.0.1:http -s rr\n-a -t 10.0.0.1:http -r 10.1.0.1:http -m -w 1\n-A -t 10.0.0.3:8080 -s rr\n-A -u 10.0.0.2:domain -s rr\n";
  const rules = parseRules(named, OPTIONS);
  assert.equal(formatRules(rules, { numeric: false, ...OPTIONS }), named);
  assert.equal(formatRules(rules, { numeric: true, ...OPTIONS }), named.replace(/:http/g, ":80").replace(":domain", ":53"));
});

test("the reference page's -S -n example", () => {
  const example =
    "-A -t 207.175.44.110:80 -s rr -p 300 -M 255.255.255.0\n" +
    "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -w 1\n" +
    "-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n";
  const rules = parseRules(example, OPTIONS);
  assert.equal(rules.services.length, 1);
  assert.deepEqual(rules.services[0]!.service.persistence, { timeout: 300, netmask: "255.255.255.0" });
  assert.deepEqual(rules.services[0]!.destinations[1]!.tunnel, { type: "gue", port: 6080, checksum: "nocsum" });
  assert.equal(formatRules(rules, { numeric: true, ...OPTIONS }), example);
});

test("restore input: sorted on output, 'ipvsadm' words, comments, blank lines, CRLF, tabs", () => {
  const input = [
    "# saved by hand",
    "",
    "ipvsadm -A -t 200.0.0.1:80 -s rr\r",
    "  -A\t-t 10.0.0.1:80   -s rr   # trailing comment",
    "ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1 -m",
  ].join("\n");
  // ipvsadm's (int) wrap puts 10.0.0.1 after 200.0.0.1.
  assert.equal(
    formatRules(parseRules(input, OPTIONS), { numeric: true, ...OPTIONS }),
    "-A -t 200.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n",
  );
  assert.deepEqual(splitRulesLine(" ipvsadm\t-A  -t\r1.2.3.4:80 #x y"), ["-A", "-t", "1.2.3.4:80"]);
});

test("edits, deletes and clear apply in order, as ipvsadm -R would into an empty table", () => {
  const input = [
    "-A -t 10.0.0.1:80 -s rr",
    "-a -t 10.0.0.1:80 -r 10.1.0.1 -m",
    "-a -t 10.0.0.1:80 -r 10.1.0.2 -m",
    "-e -t 10.0.0.1:80 -r 10.1.0.1 -m -w 7",
    "-d -t 10.0.0.1:80 -r 10.1.0.2",
    "-E -t 10.0.0.1:80 -s lc",
    "-A -t 10.0.0.9:80",
    "-D -t 10.0.0.9:80",
  ].join("\n");
  assert.equal(formatRules(parseRules(input, OPTIONS), { numeric: true, ...OPTIONS }), "-A -t 10.0.0.1:80 -s lc\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 7\n");
  assert.deepEqual(parseRules("-A -t 10.0.0.1:80\n-C\n", OPTIONS), { services: [] });
});

const BAD: Array<[string, string]> = [
  ["-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s lc\n", "line 2: Service already exists"],
  ["-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1 -m\n\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g\n", "line 4: Destination already exists"],
  ["-a -t 10.0.0.1:80 -r 10.1.0.1 -m\n", "line 1: Service not defined"],
  ["-A -t 10.0.0.1:80\n-E -t 10.0.0.2:80\n", "line 2: No such service"],
  ["-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.1.0.1\n", "line 2: No such destination"],
  ["-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1 -m -w 70000\n", "line 2: illegal weight specified"],
  ["# header\n-A -t 10.0.0.1:80 -s rr -w 1\n", "line 2: Illegal 'weight' option with the 'add-service' command"],
  ["-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1 -m -y 5\n", "line 2: Numerical result out of range"],
  ["-A -t 10.0.0.1:80\n-L -n\n", "line 2: the 'list' command does not belong in a rules file (only -A -E -D -a -e -d -C -P -Q do)"],
  ["-A -t 10.0.0.1:80\n10.0.0.2\n", "line 2: a rules line must start with a command such as -A or -a"],
  ["-A -t 10.0.0.1:80 -b\n", "line 1: -b: missing argument"],
];

for (const [text, message] of BAD) {
  test(`restore error names the line: ${message}`, () => {
    assert.throws(
      () => parseRules(text, OPTIONS),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.message, message);
        return true;
      },
    );
  });
}

test("nothing partial: a late error returns no rule set at all", () => {
  let result: unknown = "untouched";
  try {
    result = parseRules(`${SAVE_NUMERIC}-A -t 10.0.0.1:80 -s rr\n`, OPTIONS);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, `line ${SAVE_NUMERIC.split("\n").length}: Service already exists`);
  }
  assert.equal(result, "untouched");
});
