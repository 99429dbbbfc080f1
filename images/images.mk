# Images of the operator and the worker, built here without a registry or a base image
# (docs/images.md, docs/decisions/images-without-a-registry.md). Included by the root Makefile.
#
#   make images                     all three OCI archives in build/images, then their checks
#   make images IMAGES=covenant-worker-cpu     only some of them
#   make images-pin                 write the built digests into the chart and the examples
#   make images-check               build, then fail if a pinned digest differs from the build
#
# Slow, networked steps (Debian packages, the Node package, production npm packages, the CUDA
# runtime wheel) are redone only when their pinned inputs change; `make images-clean` forgets
# them (and so picks up Debian's latest security updates).

include images/versions.env

IMAGES ?= covenant-operator covenant-worker-cpu covenant-worker-cuda
IMAGES_OUT := build/images
IMAGES_STAGE := $(IMAGES_OUT)/stage
IMAGES_CACHE := $(IMAGES_OUT)/cache

# Each cached step is keyed by a hash of its inputs, as the root Makefile keys the apt stamp.
images_key = $(shell { echo '$(1)'; cat $(2); } | sha1sum | cut -c1-12)
IMAGES_BASE_STAMP := $(IMAGES_CACHE)/base-$(call images_key,$(DEBIAN_SUITE) $(DEBIAN_MIRROR) $(DEBIAN_SECURITY_MIRROR) $(DEBIAN_PACKAGES),images/base.sh)
IMAGES_NODE_STAMP := $(IMAGES_CACHE)/node-$(call images_key,$(NODE_VERSION) $(NODE_INTEGRITY),images/node.sh)
IMAGES_CUDART_STAMP := $(IMAGES_CACHE)/cudart-$(call images_key,$(CUDA_RUNTIME_WHEEL),images/cuda-runtime.sh)
IMAGES_PROD_DIR := $(IMAGES_CACHE)/prod
IMAGES_PROD_STAMP := $(IMAGES_CACHE)/prod-$(call images_key,,package.json package-lock.json)

# What each image's layers need staged (images/definitions.ts names the stages).
IMAGES_STAGES := images-stage-base images-stage-node images-stage-apps
ifneq ($(filter covenant-worker-cpu,$(IMAGES)),)
IMAGES_STAGES += images-stage-kernels-cpu
endif
ifneq ($(filter covenant-worker-cuda,$(IMAGES)),)
IMAGES_STAGES += images-stage-kernels-cuda images-stage-cuda-runtime
endif

.PHONY: images images-build images-test images-pin images-check images-clean $(IMAGES_STAGES)

images: images-build ## build the operator and worker images as OCI archives in build/images (no registry needed)
	@$(MAKE) --no-print-directory images-test

images-build: node_modules/.package-lock.json $(IMAGES_STAGES)
	$(NODE) images/build.ts --stage $(IMAGES_STAGE) --out $(IMAGES_OUT) --epoch $(IMAGES_SOURCE_DATE_EPOCH) $(IMAGES)

# The built archives: valid OCI layouts, non-root, no secrets, and (as root) node, the commands
# and the native addons actually run from each image's root file system.
images-test:
	COVENANT_IMAGES_REQUIRED="$(IMAGES)" $(NODE) --test images/built.test.ts

images-pin: ## write the built image digests into the chart's values and the examples
	$(NODE) images/pin.ts

images-check: images ## build the images, then fail if the chart or the examples pin other digests
	$(NODE) images/pin.ts --check

images-clean: ## remove the built images and their caches
	rm -rf $(IMAGES_OUT)

# ---- staging: one directory per layer, under build/images/stage ---------------------------
# The slow, networked stages are made again only when their stamp's key changes.

images-stage-base: $(IMAGES_BASE_STAMP)
$(IMAGES_BASE_STAMP): images/versions.env images/base.sh
	@scripts/apt-install.sh mmdebstrap
	images/base.sh $(IMAGES_STAGE)/base
	@mkdir -p $(IMAGES_CACHE) && rm -f $(IMAGES_CACHE)/base-* && touch $@

images-stage-node: $(IMAGES_NODE_STAMP)
$(IMAGES_NODE_STAMP): images/versions.env images/node.sh
	images/node.sh $(IMAGES_STAGE)/node
	@mkdir -p $(IMAGES_CACHE) && rm -f $(IMAGES_CACHE)/node-* && touch $@

images-stage-cuda-runtime: $(IMAGES_CUDART_STAMP)
$(IMAGES_CUDART_STAMP): images/versions.env images/cuda-runtime.sh
	images/cuda-runtime.sh $(IMAGES_STAGE)/cuda-runtime .cache/cuda/wheels $(IMAGES_CACHE)/wheels
	@mkdir -p $(IMAGES_CACHE) && rm -f $(IMAGES_CACHE)/cudart-* && touch $@

# The production dependencies only, as `npm ci --omit=dev` installs them: the bundler resolves
# packages there (images/bundle.ts). No install scripts run: no production package has native code.
$(IMAGES_PROD_STAMP): package.json package-lock.json
	rm -rf $(IMAGES_PROD_DIR) && mkdir -p $(IMAGES_PROD_DIR)
	cp package.json package-lock.json $(IMAGES_PROD_DIR)/
	cd $(IMAGES_PROD_DIR) && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f $(IMAGES_CACHE)/prod-* && touch $@

# Fast (esbuild, ninja): made every time, so they can never be stale.
images-stage-apps: $(IMAGES_PROD_STAMP) node_modules/.package-lock.json
	$(NODE) images/bundle.ts $(IMAGES_STAGE) $(IMAGES_PROD_DIR)

images-stage-kernels-cpu: images-stage-node
	images/kernels.sh cpu $(IMAGES_STAGE)/node/include $(IMAGES_CACHE)/kernels-cpu $(IMAGES_STAGE)/kernels-cpu

images-stage-kernels-cuda: images-stage-node cuda-toolchain
	images/kernels.sh cuda $(IMAGES_STAGE)/node/include $(IMAGES_CACHE)/kernels-cuda $(IMAGES_STAGE)/kernels-cuda \
	  $(KERNELS_CMAKE_FLAGS)

# `make build` (and so `make test` and `make demo`) builds the images: the tests run them on
# real kubelets. The checks of `make images` run as tests in `make test`.
BUILD_TARGETS += images-build
