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

# The full adversarial matrix (make test runs a reduced one): docs/security.md.
.PHONY: test-adversarial
test-adversarial: build ## the validator against every attacker, G above and below the candidates
	COVENANT_ADVERSARIAL_FULL=1 $(NODE) scripts/run-tests.ts --limit 900 --results build/test-results-adversarial e2e/adversarial/adversarial.test.ts
