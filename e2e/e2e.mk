# Whole-system pieces: the controller runtime benchmark and end-to-end helpers.
BENCH_TARGETS += bench-runtime

.PHONY: bench-runtime
bench-runtime: ## controller runtime: 500 objects, cold start and rolling update
	$(NODE) e2e/runtime/bench.ts --objects 500 --namespaces 10 --workers 2

# Admission by chain identity: login time through the auth callout against a static login.
BENCH_TARGETS += bench-admission
.PHONY: bench-admission
bench-admission: ## time to admit a NATS login by hotkey (auth callout + chain) vs a static login
	$(NODE) e2e/admission/bench.ts --logins=200
