// The keepalived.conf reader, without devices: a file in the style of keepalived's own LVS
// samples (doc/samples/keepalived.conf.sample, .virtual_server_group, .misc_check,
// .quorum: global_defs and vrrp_instance around NAT and DR virtual servers with several
// checkers) is read with keepalived 2.2's defaults and inheritance, and its effect on a
// Balancer is the `-Ln` keepalived would program; warnings and errors name file and line;
// a broken file is refused whole; include pulls files in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Balancer } from "../src/balancer/balancer.js";
import { DEFAULT_LIST_FORMAT, formatListing } from "../src/admin/format.js";
import { HealthChecker } from "../src/health/health-checker.js";
import { KeepalivedConfError } from "../src/health/keepalived-conf/diagnostics.js";
import { readKeepalivedConf } from "../src/health/keepalived-conf/read.js";
import type { CheckSpec } from "../src/health/spec.js";

const dir = mkdtempSync(join(tmpdir(), "keepalived-conf-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const SAMPLE = `! Configuration File for keepalived
global_defs {
   notification_email {
     admin@example.org
   }
   smtp_server 192.0.2.1
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.100
    }
}

virtual_server 10.0.0.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP

    sorry_server 192.168.10.200 80

    real_server 192.168.10.11 80 {
        weight 1
        HTTP_GET {
            url {
              path /testurl/test.jsp
              digest 640205b7b0fc66c1ea91c463fac6334d
            }
            url {
              path /testurl2/test.jsp
              status_code 200-299 404
            }
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
    real_server 192.168.10.12 80 {
        weight 2
        TCP_CHECK {
            connect_port 8080
            connect_timeout 2
        }
    }
}

virtual_server_group DR_WEB {
    10.0.0.101 80
    10.0.0.110-111 80
}

virtual_server group DR_WEB {
    delay_loop 10
    lvs_sched wlc
    lvs_method DR
    protocol TCP
    inhibit_on_failure
    quorum 2
    hysteresis 1
    alpha

    real_server 192.168.10.21 80 {
        weight 3
        MISC_CHECK {
            misc_path "/usr/local/bin/check_web 192.168.10.21"
            misc_timeout 5
            misc_dynamic
        }
        smtp_alert
    }
    real_server 192.168.10.22 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}

virtual_server fwmark 7 {
    lb_algo sh
    sh-port
    lb_kind TUN
    delay_loop 3
    real_server 192.168.10.31 443 {
        weight 1
        SSL_GET {
            url {
                path /
            }
        }
    }
}
`;

const EXPECTED_LN = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr persistent 50
  -> 192.168.10.11:80             Masq    1      0          0         
  -> 192.168.10.12:80             Masq    2      0          0         
TCP  10.0.0.101:80 wlc
  -> 192.168.10.21:80             Route   0      0          0         
  -> 192.168.10.22:80             Route   0      0          0         
TCP  10.0.0.110:80 wlc
  -> 192.168.10.21:80             Route   0      0          0         
  -> 192.168.10.22:80             Route   0      0          0         
TCP  10.0.0.111:80 wlc
  -> 192.168.10.21:80             Route   0      0          0         
  -> 192.168.10.22:80             Route   0      0          0         
FWM  7 sh (sh-port)
  -> 192.168.10.31:443            Tunnel  1      0          0         
`;

test("a keepalived.conf in the style of keepalived's samples: defaults and inheritance as keepalived 2.2 has them", () => {
  const conf = readKeepalivedConf(file("keepalived.conf", SAMPLE));
  const [nat, dr, fwm] = conf.config.virtualServers;
  assert.equal(conf.config.virtualServers.length, 3);
  assert.deepEqual(
    nat.services.map((s) => [s.key, s.scheduler, s.persistence]),
    [[{ kind: "address", protocol: "tcp", address: "10.0.0.100", port: 80 }, "rr", { timeout: 50, netmask: "255.255.255.255" }]],
  );
  assert.deepEqual(nat.sorryServer?.destination, { address: "192.168.10.200", port: 80, method: "masq", weight: 1, upperThreshold: 0, lowerThreshold: 0 });
  const http = nat.realServers[0].checks[0] as Extract<CheckSpec, { type: "HTTP_GET" | "SSL_GET" }>;
  assert.equal(http.type, "HTTP_GET");
  // delay_loop from the virtual server, the rest from the checker; warmup defaults to delay_loop.
  assert.deepEqual(
    [http.delayLoop, http.connectTimeout, http.retry, http.delayBeforeRetry, http.warmup, http.alpha, http.address, http.port],
    [6000, 3000, 3, 3000, 6000, false, "192.168.10.11", 80],
  );
  assert.deepEqual(http.urls, [
    { path: "/testurl/test.jsp", digest: "640205b7b0fc66c1ea91c463fac6334d", statusCodes: [[200, 299]] },
    {
      path: "/testurl2/test.jsp",
      statusCodes: [
        [200, 299],
        [404, 404],
      ],
    },
  ]);
  const tcp = nat.realServers[1].checks[0];
  // TCP_CHECK's defaults: retry 1, delay_before_retry 1 s; connect_port overrides the server's.
  assert.deepEqual(tcp.type === "TCP_CHECK" && [tcp.port, tcp.connectTimeout, tcp.retry, tcp.delayBeforeRetry], [8080, 2000, 1, 1000]);
  // The group: one service per member, inhibit_on_failure, quorum, hysteresis and alpha inherited.
  assert.deepEqual(
    dr.services.map((s) => s.key.kind === "address" && s.key.address),
    ["10.0.0.101", "10.0.0.110", "10.0.0.111"],
  );
  assert.deepEqual([dr.quorum, dr.hysteresis], [2, 1]);
  const [rs21, rs22] = dr.realServers;
  assert.deepEqual([rs21.inhibitOnFailure, rs21.destination.method, rs21.destination.weight, rs22.destination.weight], [true, "route", 3, 1]);
  const misc = rs21.checks[0];
  assert.deepEqual(misc.type === "MISC_CHECK" && [misc.command, misc.timeout, misc.dynamic, misc.retry, misc.alpha, misc.delayLoop], [
    ["/usr/local/bin/check_web", "192.168.10.21"],
    5000,
    true,
    0,
    true,
    10_000,
  ]);
  assert.deepEqual(
    fwm.services.map((s) => [s.key, s.scheduler, s.schedulerFlags]),
    [[{ kind: "fwmark", fwmark: 7, family: 4 }, "sh", ["sh-port"]]],
  );
  assert.equal(fwm.realServers[0].checks[0].type, "SSL_GET");
  // Warnings name file and line: global_defs (line 2), vrrp_instance (10), smtp_alert (76);
  // the fwmark service needs no protocol, and every service names its scheduler.
  const warnings = conf.diagnostics.map((d) => `${d.line}: ${d.message.split(":")[0]}`);
  assert.deepEqual(warnings, ["2: global_defs", "10: vrrp_instance", "76: smtp_alert"]);
  assert.ok(conf.diagnostics.every((d) => d.severity === "warning" && d.file.endsWith("keepalived.conf")));
});

test("the sample's effect on a Balancer is the -Ln keepalived would program: alpha servers in at weight 0 (inhibit), the rest alive", async () => {
  const conf = readKeepalivedConf(file("keepalived.conf", SAMPLE));
  const balancer = new Balancer({ connections: 4096, slots: 4, director: { tunnelSource4: "192.168.10.1" } });
  // No check runs yet (warmup is at least a few seconds): the table is the starting state.
  const checker = HealthChecker.forBalancer(balancer, { probe: () => new Promise(() => {}), log: () => {} });
  await checker.start(conf.config);
  try {
    assert.equal(formatListing(balancer.listing(), { ...DEFAULT_LIST_FORMAT, numeric: true }), EXPECTED_LN);
  } finally {
    checker.stop();
  }
});

test("errors refuse the whole file with its file:line; warnings do not", () => {
  const broken = (name: string, text: string) => {
    const path = file(name, text);
    try {
      readKeepalivedConf(path);
    } catch (e) {
      assert.ok(e instanceof KeepalivedConfError, String(e));
      return e.message;
    }
    assert.fail(`${name} was accepted`);
  };
  const vs = (body: string) => `virtual_server 10.0.0.100 80 {\n  protocol TCP\n  lb_algo rr\n${body}\n}\n`;
  assert.match(
    broken("unknown-vs", vs("  frobnicate yes\n  real_server 10.1.0.1 80 {\n  }")),
    /unknown-vs:4: error: frobnicate: unknown or unsupported in virtual_server/,
  );
  assert.match(broken("bad-sched", vs("  lvs_sched fastest\n  real_server 10.1.0.1 80 {\n  }")), /bad-sched:4: error: lvs_sched fastest: not a scheduler/);
  assert.match(
    broken("smtp-check", vs("  real_server 10.1.0.1 80 {\n    SMTP_CHECK {\n    }\n  }")),
    /smtp-check:5: error: SMTP_CHECK: lvs-wasm does not run this checker/,
  );
  assert.match(
    broken("regex", vs("  real_server 10.1.0.1 80 {\n    HTTP_GET {\n      url {\n        path /\n        regex ok\n      }\n    }\n  }")),
    /regex:8: error: regex/,
  );
  assert.match(broken("weight", vs("  real_server 10.1.0.1 80 {\n    weight 70000\n  }")), /weight:5: error: weight 70000: expected an integer in 0\.\.65535/);
  assert.match(broken("address", vs("  real_server 10.1.0.300 80 {\n  }")), /address:4: error: 10\.1\.0\.300: not an IP address/);
  assert.match(broken("unclosed", vs("  real_server 10.1.0.1 80 {\n").replace(/}\n$/, "")), /unclosed:4: block "real_server" is not closed/);
  assert.match(broken("quote", 'virtual_server 10.0.0.100 80 {\n  quorum_up "/bin/true\n}\n'), /quote:2: unterminated quoted string/);
  assert.match(
    broken("dup", vs("  real_server 10.1.0.1 80 {\n  }") + vs("  real_server 10.1.0.2 80 {\n  }")),
    /dup:7: error: virtual server TCP 10\.0\.0\.100:80 is already defined at .*dup:1/,
  );
  assert.match(
    broken("digest", vs("  real_server 10.1.0.1 80 {\n    HTTP_GET {\n      url {\n        path /\n        digest 1234\n      }\n    }\n  }")),
    /digest:8: error: digest 1234: expected 32 hex digits/,
  );
  assert.match(broken("missing-include", "include nothing-here.conf\n"), /missing-include:1: cannot read .*nothing-here\.conf \(ENOENT\)/);
  assert.match(broken("group", "virtual_server group NOPE {\n}\n"), /group:1: error: virtual_server group NOPE: no virtual_server_group/);
  // Warnings only: the file is read.
  const ok = readKeepalivedConf(
    file("warn", `${vs("  ha_suspend\n  real_server 10.1.0.1 80 {\n    snmp_name rs1\n  }")}vrrp_script chk {\n  script /bin/true\n}\n`),
  );
  assert.deepEqual(
    ok.diagnostics.map((d) => [d.severity, d.line]),
    [
      ["warning", 4],
      ["warning", 6],
      ["warning", 9],
    ],
  );
});

test("include: a pattern in the file name pulls the files in, in order, relative to the including file; keepalived's defaults for what is left out", () => {
  const sub = mkdtempSync(join(dir, "conf.d-"));
  writeFileSync(join(sub, "b.conf"), "virtual_server 10.0.0.2 80 {\n  protocol TCP\n  real_server 10.1.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n}\n");
  writeFileSync(
    join(sub, "a.conf"),
    "virtual_server 10.0.0.1 53 {\n  lb_algo rr\n  real_server 10.1.0.1 53 {\n    DNS_CHECK {\n      name example.org\n    }\n  }\n}\n",
  );
  writeFileSync(join(sub, "skip.txt"), "this is not included {\n");
  const main = file("with-include.conf", `include ${sub.split("/").pop()}/*.conf\n`);
  const conf = readKeepalivedConf(main);
  assert.deepEqual(
    conf.config.virtualServers.map((v) => v.services[0].key),
    [
      { kind: "address", protocol: "udp", address: "10.0.0.1", port: 53 },
      { kind: "address", protocol: "tcp", address: "10.0.0.2", port: 80 },
    ],
  );
  // a.conf: no protocol -> keepalived's UDP, with a warning at a.conf:1; b.conf: no scheduler -> wlc.
  assert.deepEqual(
    conf.diagnostics.map((d) => `${d.file.split("/").pop()}:${d.line}: ${d.message.split(":")[0]}`),
    ["a.conf:1: no protocol", "b.conf:1: no lvs_sched (lb_algo)"],
  );
  assert.equal(conf.config.virtualServers[1].services[0].scheduler, "wlc");
  const dns = conf.config.virtualServers[0].realServers[0].checks[0];
  const tcp = conf.config.virtualServers[1].realServers[0].checks[0];
  assert.deepEqual(dns.type === "DNS_CHECK" && [dns.name, dns.queryType, dns.port, dns.retry, dns.delayBeforeRetry, dns.delayLoop], [
    "example.org",
    "SOA",
    53,
    3,
    60_000,
    60_000,
  ]);
  assert.deepEqual([tcp.delayLoop, tcp.connectTimeout, tcp.retry, tcp.delayBeforeRetry, tcp.warmup, tcp.alpha], [60_000, 5000, 1, 1000, 60_000, false]);
});

test("lvsd --keepalived with a broken file: exit 1 with the file:line error before any device is opened; --keepalived excludes --rules", async () => {
  const cli = new URL("../src/runtime/lvsd-cli.ts", import.meta.url).pathname;
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", cli, "--workers", "1", ...args], { timeout: 30_000 }, (error, _stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stderr });
      });
    });
  const broken = file("cli-broken.conf", "virtual_server 10.0.0.100 80 {\n  protocol TCP\n  real_server 10.1.0.1 80 {\n    PING_CHECK {\n    }\n  }\n}\n");
  const r = await run(["--tun", "lvsw-never-opened", "--socket", join(dir, "never.sock"), "--keepalived", broken]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^lvsd: cannot start: .*cli-broken\.conf:4: error: PING_CHECK: lvs-wasm does not run this checker/m);
  assert.doesNotMatch(r.stderr, /adapter|balancer:/, "nothing was opened or built");
  assert.match(r.stderr, /^lvsd: keepalived\.conf: .*cli-broken\.conf:4: error: PING_CHECK/m, "every diagnostic is listed too");
  const both = await run(["--tun", "x", "--keepalived", broken, "--rules", broken]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--keepalived and --rules exclude each other/);
});
