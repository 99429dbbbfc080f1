# Make fragment for the training engine (included by kernels/kernels.mk). Its CTest tests run
# under test-kernels and its binding test under test-node; these are conveniences.
ENGINE_CLI := $(KERNELS_BUILD)/engine/covenant-engine

.PHONY: test-engine engine-info

test-engine: kernels-build ## the training engine's CTest and binding tests only
	cd $(KERNELS_BUILD) && ctest -R '^engine\.' --output-on-failure
	$(NODE) --test kernels/binding/engine.test.ts

engine-info: kernels-build ## memory needs of every model preset
	@for p in llama3-tiny llama3-20m llama3-150m llama3-1b llama3-8b llama3-72b; do $(ENGINE_CLI) info $$p; echo; done

# Hugging Face check, an evidence target outside `make test`: trains llama3-tiny briefly,
# exports it (covenant-engine export --hf) and has transformers load it; logits and tokenizer
# ids must match the engine's, and transformers-saved models must import and export back bit
# for bit (scripts/hf_check.py, docs/huggingface.md). PyPI's Linux torch wheel is the CUDA
# build and does not import without its nvidia-* wheels, even on a CPU: the venv downloads
# about 3.0 GB and takes 5.5 GiB, so it is made once per package list and kept.
HF_VENV := build/hf-venv
HF_PY := $(HF_VENV)/bin/python
HF_PIP_PACKAGES ?= torch==2.15.0 transformers==5.24.0 safetensors==0.8.0
HF_STAMP := $(HF_VENV)/.installed-$(shell echo $(HF_PIP_PACKAGES) | sha1sum | cut -c1-12)
HF_WORK := build/hf-check

$(HF_STAMP):
	python3 -m venv $(HF_VENV)
	$(HF_PY) -m pip install --quiet --disable-pip-version-check $(HF_PIP_PACKAGES)
	touch $@

.PHONY: hf-venv hf-check
hf-venv: $(HF_STAMP) ## Python venv with torch and transformers (for hf-check)

hf-check: $(KERNELS_BUILD)/CMakeCache.txt hf-venv ## engine -> Hugging Face export checked with transformers
	cmake --build $(KERNELS_BUILD) --target covenant-engine -j2
	rm -rf $(HF_WORK) && mkdir -p $(HF_WORK)
	$(ENGINE_CLI) tokenize --out $(HF_WORK)/shards docs/*.md
	OMP_NUM_THREADS=2 $(ENGINE_CLI) train --preset llama3-tiny --shard $(HF_WORK)/shards/shard_00000.bin \
	  --steps 60 --batch 4 --seq 128 --lr 3e-3 --save $(HF_WORK)/tiny.safetensors
	OMP_NUM_THREADS=2 $(HF_PY) kernels/engine/scripts/hf_check.py --cli $(ENGINE_CLI) \
	  --ckpt $(HF_WORK)/tiny.safetensors --work $(HF_WORK)
