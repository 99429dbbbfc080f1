# The official Bittensor Python SDK against the chain (conformance/, see docs/chain.md).
# Included from the Makefile with: -include conformance/conformance.mk
CONFORMANCE_VENV := build/conformance-venv
CONFORMANCE_PY := $(CONFORMANCE_VENV)/bin/python
CONFORMANCE_RESULTS ?= build/test-results

TEST_TARGETS += test-conformance
# `make setup` makes the virtualenv too.
setup: conformance-venv

# The venv is rebuilt only when the pins change (the stamp is newer than requirements.txt).
$(CONFORMANCE_VENV)/.installed: conformance/requirements.txt
	rm -rf $(CONFORMANCE_VENV)
	python3 -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_PY) -m pip install --quiet --disable-pip-version-check -r conformance/requirements.txt
	touch $@

.PHONY: conformance-venv test-conformance
conformance-venv: $(CONFORMANCE_VENV)/.installed ## Python venv with the pinned Bittensor SDK

# Runs against the local chain it starts, or COVENANT_CHAIN_ENDPOINT when set.
# pytest exits 5 when it collected no test: that is a failure here too. The whole suite runs
# under a time limit, as every other test file does, so it cannot hang make test.
test-conformance: $(CONFORMANCE_VENV)/.installed ## the Bittensor SDK driving the chain as a miner and validator
	@mkdir -p $(CONFORMANCE_RESULTS)
	timeout --kill-after=30 900 $(CONFORMANCE_PY) -m pytest -p no:cacheprovider -q conformance \
	  --junitxml=$(CONFORMANCE_RESULTS)/conformance.xml -o junit_suite_name=conformance
