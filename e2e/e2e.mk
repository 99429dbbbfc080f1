# Whole-system pieces: the controller runtime benchmark and end-to-end helpers.
BENCH_TARGETS += bench-runtime

.PHONY: bench-runtime
bench-runtime: ## controller runtime: 500 objects, cold start and rolling update
	$(NODE) e2e/runtime/bench.ts --objects 500 --namespaces 10 --workers 2
