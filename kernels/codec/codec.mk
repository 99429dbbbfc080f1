# Make fragment of the SparseLoCo codec, included by kernels/kernels.mk.
# The CUDA compiler comes from pinned PyPI wheels (kernels/cuda/install.sh) into .cache/cuda,
# so that every build compiles the CUDA backends for sm_90 and sm_100, GPU or not.
CUDA_HOME_LOCAL := $(ROOT)/.cache/cuda/13.0
CUDA_STAMP := $(CUDA_HOME_LOCAL)/.installed

# clang and its runtime (libFuzzer, ASan, UBSan; not pulled in by clang itself) for the fuzz target.
APT_PACKAGES += clang libclang-rt-14-dev
# enable_language(CUDA) defines CMAKE_CUDA_ARCHITECTURES (to the compiler's default) before
# kernels/CMakeLists.txt can default it, so the targets are named here.
KERNELS_CMAKE_FLAGS += -DCMAKE_CUDA_COMPILER=$(CUDA_HOME_LOCAL)/bin/nvcc -DCUDAToolkit_ROOT=$(CUDA_HOME_LOCAL) \
  -DCMAKE_CUDA_ARCHITECTURES="90;100"

$(CUDA_STAMP): kernels/cuda/install.sh
	kernels/cuda/install.sh $(CUDA_HOME_LOCAL) >/dev/null
	@touch $@

$(KERNELS_BUILD)/CMakeCache.txt: $(CUDA_STAMP)

.PHONY: cuda-toolchain fuzz-codec
cuda-toolchain: $(CUDA_STAMP) ## install the pinned CUDA compiler into .cache/cuda (idempotent)

fuzz-codec: kernels-build ## fuzz the codec's payload decoder (FUZZ_SECONDS, default 60)
	cd $(KERNELS_BUILD) && ctest -R codec_fuzz --output-on-failure
