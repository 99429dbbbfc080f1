# Make fragment for the native engine, included by the root Makefile.
# CMake builds into kernels/build; CTest results go to the shared test results.
KERNELS_BUILD := kernels/build
KERNELS_CMAKE_FLAGS ?=

BUILD_TARGETS += kernels-build
TEST_TARGETS += test-kernels
BENCH_TARGETS += bench-kernels bench-engine
LINT_TARGETS += lint-cpp

.PHONY: kernels-build test-kernels bench-kernels bench-engine lint-cpp

# Each part of the engine may add its own variables and targets.
-include kernels/codec/codec.mk
-include kernels/engine/engine.mk

$(KERNELS_BUILD)/CMakeCache.txt: kernels/CMakeLists.txt
	cmake -S kernels -B $(KERNELS_BUILD) -G Ninja $(KERNELS_CMAKE_FLAGS) >/dev/null

kernels-build: $(KERNELS_BUILD)/CMakeCache.txt ## build the native engine (CPU, and CUDA when nvcc is available)
	cmake --build $(KERNELS_BUILD) -j2

# Each CTest test has a 600 s limit (--timeout), so a hung kernel test fails instead of hanging.
test-kernels: kernels-build
	@mkdir -p $(RESULTS)
	@if [ -n "$$(cd $(KERNELS_BUILD) && ctest -N | grep -E '^Total Tests: [1-9]')" ]; then \
	  cd $(KERNELS_BUILD) && ctest --timeout 600 --output-on-failure --output-junit $(ROOT)/$(RESULTS)/kernels.xml; \
	else echo "kernels: no CTest tests yet"; fi

bench-kernels: kernels-build ## SparseLoCo codec benchmarks (results in kernels/BENCHMARKS.md)
	@if [ -x kernels/codec/bench.sh ]; then kernels/codec/bench.sh; else echo "bench-kernels: no codec benchmark yet"; fi

bench-engine: kernels-build ## training engine benchmarks (results in kernels/BENCHMARKS.md)
	@if [ -x kernels/engine/bench.sh ]; then kernels/engine/bench.sh; else echo "bench-engine: no engine benchmark yet"; fi

CPP_SOURCES = $(shell find kernels -path kernels/build -prune -o \( -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' \) -print 2>/dev/null)
lint-cpp:
	@if [ -n "$(CPP_SOURCES)" ]; then clang-format --dry-run --Werror $(CPP_SOURCES); fi
