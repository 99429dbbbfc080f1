import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, parseAdmissionConfig, usage } from "./config.ts";

const HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const required = [
  "--nats-url=nats://bus-0:4222,nats://bus-1:4222",
  "--nats-creds=/etc/admission/callout.nk",
  "--chain-endpoint=wss://chain.example:443",
  "--netuid=3",
  "--run=llama-72b",
  "--issuer-seed-file=/etc/admission/issuer.nk",
];

describe("covenant-admission configuration", () => {
  test("flags with defaults", () => {
    assert.deepEqual(parseAdmissionConfig(required, {}), {
      natsServers: ["nats://bus-0:4222", "nats://bus-1:4222"],
      natsCreds: "/etc/admission/callout.nk",
      natsCa: undefined,
      chainEndpoint: "wss://chain.example:443",
      netuid: 3,
      run: "llama-72b",
      issuerSeedFile: "/etc/admission/issuer.nk",
      ttlSeconds: 300,
      chainTimeoutMs: 3000,
      validators: [],
      httpAddress: ":8080",
      logLevel: "info",
    });
  });

  test("environment, overridden by flags", () => {
    const c = parseAdmissionConfig(["--ttl", "90s", ...required], {
      COVENANT_ADMISSION_TTL: "10m",
      COVENANT_ADMISSION_VALIDATORS: ` ${HOTKEY} ,`,
      COVENANT_ADMISSION_HTTP_ADDRESS: "",
      COVENANT_ADMISSION_NATS_CA: "/ca.pem",
    });
    assert.equal(c.ttlSeconds, 90);
    assert.deepEqual(c.validators, [HOTKEY]);
    assert.equal(c.httpAddress, "");
    assert.equal(c.natsCa, "/ca.pem");
  });

  test("bad or missing values are clear errors", () => {
    const without = (flag: string) => required.filter((f) => !f.startsWith(`--${flag}=`));
    for (const flag of ["nats-url", "nats-creds", "chain-endpoint", "netuid", "run", "issuer-seed-file"])
      assert.throws(() => parseAdmissionConfig(without(flag), {}), new RegExp(`--${flag} is required`));
    const bad: [string, RegExp][] = [
      ["--netuid=70000", /netuid/],
      ["--netuid=-1", /netuid/],
      ["--run=Not_A_Label", /--run/],
      ["--chain-endpoint=http://x", /ws:\/\/ or wss:\/\//],
      ["--nats-url=http://x", /nats-url/],
      ["--ttl=1500ms", /whole number of seconds/],
      ["--ttl=0s", /at least 1s/],
      ["--validators=alice", /SS58/],
      ["--http-address=8080", /http-address/],
      ["--log-level=loud", /log-level/],
      ["--frobnicate=1", /unknown flag/],
      ["positional", /flags start with --/],
    ];
    for (const [arg, re] of bad) {
      assert.throws(
        () => parseAdmissionConfig([...required, arg], {}),
        (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
        arg,
      );
    }
    assert.throws(() => parseAdmissionConfig([...required, "--ttl"], {}), /needs a value/);
  });

  test("usage lists every flag with its environment variable", () => {
    const u = usage();
    for (const f of [
      "--nats-url",
      "--issuer-seed-file",
      "--ttl",
      "COVENANT_ADMISSION_CHAIN_ENDPOINT",
      "required",
    ])
      assert.ok(u.includes(f), f);
  });
});
