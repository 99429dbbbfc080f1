# Worker (covenant-worker) and the gradient bus: unit tests, integration tests on a
# real nats-server, the multi-process acceptance run, and the bus benchmark.

BENCH_TARGETS += bench-bus bench-round

.PHONY: test-worker test-data-e2e test-bus-e2e test-worker-e2e bench-bus bench-round worker-run

# Fast unit tests (no server).
test-worker:
	$(NODE) --test worker/*.test.ts worker/data/*.test.ts operator/bus/*.test.ts protocol/*.test.ts protocol/bus/*.test.ts

# Bus integration tests: permissions enforced by nats-server, restart durability.
test-bus-e2e:
	$(NODE) --test --test-concurrency=1 e2e/bus/*.test.ts

# Data sources: upload, nats:// and https:// fetches, corrupt and missing shards, a worker on them.
test-data-e2e:
	$(NODE) --test --test-concurrency=1 e2e/data/*.test.ts

# Acceptance: 1 validator + 3 miners train llama3-tiny on CPU (needs kernels-build).
test-worker-e2e: kernels-build
	$(NODE) --test --test-concurrency=1 e2e/worker/*.test.ts

# Object Store put/get throughput vs raw TCP loopback; table for docs/bus.md.
bench-bus: ## gradient bus throughput (Object Store vs raw TCP, 64 MiB..1 GiB)
	$(NODE) e2e/bus/bench.ts 64 256 1024

# Per-round protocol overhead (everything but inner steps) for 3 miners + 1 validator.
bench-round: kernels-build ## round overhead of the worker protocol, 3 miners (llama3-tiny, CPU)
	$(NODE) e2e/worker/bench-round.ts 12

# Start one worker by hand: make worker-run ARGS="--role miner --config run.json ..."
worker-run:
	$(NODE) worker/main.ts $(ARGS)
