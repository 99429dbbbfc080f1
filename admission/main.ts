#!/usr/bin/env -S node --import tsx
/**
 * covenant-admission: admits peers to a run's bus by their chain identity (NATS auth callout).
 * Exit status: 0 after SIGTERM/SIGINT, 1 on errors (the bus connection closed for good), 2 on bad flags.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connectBus } from "../protocol/bus/connection.ts";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { collectDefaultMetrics, Registry } from "prom-client";
import { redactEndpoint } from "../protocol/chain/endpoint.ts";
import { createLogger } from "../protocol/log.ts";
import { ChainStandings } from "./chain.ts";
import { ConfigError, parseAdmissionConfig, usage, type AdmissionConfig } from "./config.ts";
import { serveHealth, type HealthServer } from "./http.ts";
import { readSeedFile } from "./keys.ts";
import { createAdmissionMetrics } from "./metrics.ts";
import { AdmissionService } from "./service.ts";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(usage());
    return 0;
  }
  let c: AdmissionConfig;
  try {
    c = parseAdmissionConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`covenant-admission: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger({ level: c.logLevel, fields: { component: "covenant-admission", run: c.run } });
  await cryptoWaitReady();
  const issuer = readSeedFile(c.issuerSeedFile, "account");
  const callout = readSeedFile(c.natsCreds, "user");
  log.info("starting", {
    netuid: c.netuid,
    chain: redactEndpoint(c.chainEndpoint),
    nats: c.natsServers,
    issuer: issuer.getPublicKey(),
    calloutUser: callout.getPublicKey(),
    ttlSeconds: c.ttlSeconds,
    validators: c.validators.length,
  });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = createAdmissionMetrics(registry);

  const chain = new ChainStandings({
    endpoint: c.chainEndpoint,
    netuid: c.netuid,
    queryTimeoutMs: c.chainTimeoutMs,
    onState: (s) => {
      metrics.chainConnected.set(s.phase === "Connected" ? 1 : 0);
      const fields = { phase: s.phase, endpoint: s.endpoint, failures: s.failures, lastError: s.lastError };
      if (s.phase === "Unreachable") log.warn("chain", fields);
      else log.info("chain", fields);
    },
  });
  chain.start();

  const service = new AdmissionService({
    run: c.run,
    issuer,
    ttlSeconds: c.ttlSeconds,
    validators: c.validators,
    standings: chain,
    metrics,
    log,
  });

  let nc: NatsConnection | undefined;
  let http: HealthServer | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    // Finish the requests being answered, then let go of the bus, the chain and the port.
    await service.stop();
    await nc?.drain().catch(() => undefined);
    await chain.stop();
    await http?.close();
  };

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ["SIGTERM", "SIGINT"] as const) process.once(s, () => resolve(s));
  });

  try {
    if (c.httpAddress) {
      http = await serveHealth(
        c.httpAddress,
        registry,
        () =>
          stopping
            ? "shutting down"
            : !nc || nc.isClosed()
              ? "not connected to the bus"
              : !chain.connected
                ? `chain ${chain.connection.snapshot.phase.toLowerCase()}`
                : undefined,
        log,
      );
      log.info("serving health and metrics", { url: http.url });
    }
    // The bus may not be up yet (waitOnFirstConnect keeps trying); a signal meanwhile still stops us.
    const first = await Promise.race([
      connectBus({
        servers: c.natsServers.join(","),
        name: "covenant-admission",
        nkeySeed: callout.getSeed(),
        reconnectWaitMs: 500,
        tls: c.natsCa ? { caFile: c.natsCa } : undefined,
      }),
      signalled,
    ]);
    if (typeof first === "string") {
      log.info("stopping before the bus connected", { signal: first });
      await stop();
      return 0;
    }
    nc = first;
    service.start(nc);
    log.info("answering authorization requests", { server: nc.getServer() });
    void (async () => {
      for await (const s of first.status()) {
        if (s.type === "disconnect" || s.type === "reconnect")
          log.info(`bus ${s.type}`, { server: s.server });
      }
    })();
  } catch (e) {
    log.error("could not start", { err: e });
    await stop();
    return 1;
  }

  const outcome = await Promise.race([
    signalled.then((s) => ({ signal: s })),
    nc.closed().then((err) => ({ closed: err })),
  ]);
  if ("signal" in outcome) {
    log.info("stopping", { signal: outcome.signal });
    await stop();
    log.info("stopped");
    return 0;
  }
  log.error("the bus connection closed", { err: outcome.closed });
  await stop();
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`covenant-admission: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
