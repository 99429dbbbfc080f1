# Covenant operator: one entry point for building, testing and running the project.
# `make demo` and `make test` install everything they need (npm packages, Debian
# packages, the pinned test binaries built from Go sources) on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
BIN := $(ROOT)/bin
export PATH := $(BIN):$(ROOT)/node_modules/.bin:$(PATH)
export COVENANT_BIN := $(BIN)

# Debian packages: Prometheus for metrics tests, clang tools for C++ lint and fuzzing,
# containerd, runc, CNI plugins and iptables for the real nodes of the test stack.
APT_PACKAGES := prometheus clang-format ninja-build containerd runc containernetworking-plugins iptables
NODE := node --import tsx
RESULTS := build/test-results

# Component fragments add their own targets and extend these lists.
BUILD_TARGETS :=
TEST_TARGETS := test-node
BENCH_TARGETS :=
LINT_TARGETS := lint-ts
GENERATE_TARGETS :=
-include kernels/kernels.mk
-include operator/operator.mk
-include worker/worker.mk
-include e2e/e2e.mk
-include charts/charts.mk
-include images/images.mk
-include conformance/conformance.mk

.PHONY: help setup tools build test test-node lint lint-ts format demo bench generate simulate clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: build/.apt-stamp node_modules/.package-lock.json tools ## install everything the project needs (idempotent)

APT_STAMP := build/.apt-$(shell echo $(sort $(APT_PACKAGES)) | sha1sum | cut -c1-12)
build/.apt-stamp: $(APT_STAMP)
	@cp $< $@
$(APT_STAMP):
	@mkdir -p build
	@scripts/apt-install.sh $(APT_PACKAGES)
	@touch $@

node_modules/.package-lock.json: package-lock.json
	npm ci --no-fund --no-audit
	@touch $@

tools: ## build the pinned test binaries (Kubernetes, etcd, NATS, Helm, kwok) into bin/
	@tools/build.sh

build: setup $(BUILD_TARGETS) ## build everything
	@true

# One id per `make test`, inherited by every process the tests start and put in the names of
# their temporary directories, so the leftover check counts only what this run left.
COVENANT_TEST_RUN ?= $(shell od -An -N4 -tx4 /dev/urandom | tr -d ' ')
test: export COVENANT_TEST_RUN := $(COVENANT_TEST_RUN)
test: build ## run every test and print one summary
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS) && touch $(RESULTS)/.started
	@status=0; for t in $(TEST_TARGETS); do $(MAKE) --no-print-directory $$t || status=1; done; \
	  scripts/check-leftovers.sh $(RESULTS)/.started || status=1; \
	  $(NODE) scripts/test-summary.ts $(RESULTS) || status=1; exit $$status

# Unit tests sit beside the code; integration and end-to-end tests in e2e/. Each file runs in
# its own process group under a time limit (300 s unless it declares `// test-limit: N s`), so
# a file that hangs is stopped, named and failed instead of hanging the suite.
TEST_FILES = $(shell find api protocol operator worker admission e2e kernels/binding scripts images scale -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)
test-node:
	@mkdir -p $(RESULTS)
	$(NODE) scripts/run-tests.ts --concurrency 2 --limit 300 --results $(RESULTS) $(TEST_FILES)

lint: node_modules/.package-lock.json $(LINT_TARGETS) ## typecheck, eslint, prettier, clang-format
	@true

lint-ts:
	tsc --noEmit -p tsconfig.json
	eslint .
	prettier --check .

format: node_modules/.package-lock.json ## rewrite sources in the project's format
	prettier --write .

generate: node_modules/.package-lock.json $(GENERATE_TARGETS) ## regenerate derived files (CRDs, RBAC)
	@true

demo: build ## bring up the whole system locally and run a training run
	$(NODE) e2e/demo.ts

bench: build $(BENCH_TARGETS) ## run every benchmark
	@true

simulate: ## cost of a round at scale: the table and docs/images/scale-72b-utilisation.png
	$(NODE) scale/simulate.ts

clean: ## remove build outputs (keeps the cached tool binaries in bin/)
	rm -rf build kernels/build
