# Make fragment for the training engine (included by kernels/kernels.mk). Its CTest tests run
# under test-kernels and its binding test under test-node; these are conveniences.
ENGINE_CLI := $(KERNELS_BUILD)/engine/covenant-engine

.PHONY: test-engine engine-info

test-engine: kernels-build ## the training engine's CTest and binding tests only
	cd $(KERNELS_BUILD) && ctest -R '^engine\.' --output-on-failure
	$(NODE) --test kernels/binding/engine.test.ts

engine-info: kernels-build ## memory needs of every model preset
	@for p in llama3-tiny llama3-20m llama3-150m llama3-1b llama3-8b llama3-72b; do $(ENGINE_CLI) info $$p; echo; done
