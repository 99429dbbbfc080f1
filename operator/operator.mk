# Operator: API generation (CRDs and RBAC from api) and the operator's tests.

GENERATE_TARGETS += generate-operator
TEST_TARGETS += check-generated-operator
BENCH_TARGETS += bench-operator

.PHONY: generate-operator check-generated-operator test-operator test-operator-e2e bench-operator

generate-operator: ## write crds/ and config/rbac/ from api/
	$(NODE) api/generate.ts

check-generated-operator:
	$(NODE) api/generate.ts --check

# Fast unit tests of the API and the planning functions (no cluster).
test-operator:
	$(NODE) --test api/*.test.ts operator/controllers/*.test.ts operator/config.test.ts

# Integration tests against a real API server, scheduler and kwok nodes.
test-operator-e2e:
	$(NODE) --test --test-concurrency=1 e2e/operator/*.test.ts

# 500 CovenantPeers across 50 TrainingRuns on kwok nodes: converge time, reconcile latency,
# API requests per reconcile, resident memory (a Markdown table on stdout).
bench-operator:
	$(NODE) e2e/operator/bench.ts
