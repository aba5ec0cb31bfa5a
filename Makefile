# A thin layer over CMake: the README's two commands and their variants.
BUILD ?= build
JOBS ?= $(shell nproc)
# No test may wait on the terminal or run away with CI's time: standard input
# is empty and each test program is stopped after TEST_TIMEOUT seconds.
TEST_TIMEOUT ?= 900
CTEST = ctest --output-on-failure -j $(JOBS) --timeout $(TEST_TIMEOUT) </dev/null

FUZZ_SECONDS ?= 60

.PHONY: run test test-asan fuzz valgrind build deps clean bench bench-tokenizer

# Build everything and let the bundled model continue a prompt.
run: build
	./$(BUILD)/olmoc run -p "Language modeling is " -n 64

# Build with -Werror and run the whole test suite.
test: deps
	cmake -S . -B $(BUILD) -DOLMOC_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && $(CTEST)

# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD)-asan -DOLMOC_WERROR=ON -DOLMOC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && $(CTEST)

# The libFuzzer targets of fuzz/ (clang-19), FUZZ_SECONDS each, one after
# another; FUZZ_TARGETS="ir chat" runs some only (fuzz/README.md).
fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -DOLMOC_FUZZ=ON -DOLMOC_WERROR=ON -DCMAKE_C_COMPILER=clang-19 >/dev/null
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The command end to end under valgrind's memcheck on the bundled model, with
# the reference interpreter and with the JIT: no errors, no leak (definite,
# indirect or possible; tests/valgrind.supp says why libgomp's one is not).
# About 3 minutes, most of it LLVM compiling under valgrind: not in `test`.
VALGRIND = valgrind --leak-check=full --error-exitcode=1 --suppressions=tests/valgrind.supp
valgrind: build
	@scripts/install-deps.sh valgrind
	$(VALGRIND) ./$(BUILD)/olmoc run -p "Language modeling is " -n 8 --backend interp
	$(VALGRIND) ./$(BUILD)/olmoc run -p "Language modeling is " -n 8

# Every benchmark of bench/ and the machine probes, each figure printed under
# the command that made it (bench/README.md): olmoc bench on the bundled model
# (the probes run inside it) in f32, bf16, bf16 compute (where the CPU has
# AVX512_BF16) and q8; the tokenizer on the bundled held-out text; the memory
# plans of the published configs; the matmul and attention kernels alone at
# the 1B's shapes. About a minute; figures only, no timing assertions.
# BENCH_MODEL=models/olmo2-1b measures a real size (minutes, 13 GB of memory).
BENCH_MODEL ?= models/olmo2-tiny
BENCH_THREADS ?= $(JOBS)
BENCH_TARGETS = olmoc tokenizer_bench memory_plan_bench matmul_kernel_bench attention_kernel_bench
bench: deps
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target $(BENCH_TARGETS) >/dev/null
	@echo "machine: $$(nproc) cores, load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(date -u +%Y-%m-%d)"
	./$(BUILD)/olmoc version
	./$(BUILD)/olmoc bench -m $(BENCH_MODEL) -t $(BENCH_THREADS)
	./$(BUILD)/olmoc bench -m $(BENCH_MODEL) -t $(BENCH_THREADS) --dtype bf16
	@if ./$(BUILD)/olmoc version | grep -qw avx512bf16; then \
	  set -x; ./$(BUILD)/olmoc bench -m $(BENCH_MODEL) -t $(BENCH_THREADS) --dtype bf16 --compute bf16; \
	else echo "no AVX512_BF16 here: no --compute bf16 run"; fi
	./$(BUILD)/olmoc bench -m $(BENCH_MODEL) -t $(BENCH_THREADS) --dtype q8
	./$(BUILD)/tokenizer_bench models/olmo2-tiny/heldout.txt 10 models/olmo2-tokenizer/tokenizer.json
	./$(BUILD)/tokenizer_bench models/olmo2-tiny/heldout.txt 10 models/olmo2-tiny/tokenizer.json
	./$(BUILD)/memory_plan_bench
	./$(BUILD)/matmul_kernel_bench 2048 2048 3 128 $(BENCH_THREADS)
	./$(BUILD)/matmul_kernel_bench 2048 8192 3 1 $(BENCH_THREADS)
	./$(BUILD)/attention_kernel_bench 2048 1 16 16 64 $(BENCH_THREADS)
	./$(BUILD)/attention_kernel_bench 0 512 16 16 64 $(BENCH_THREADS)

# Tokenizer throughput, olmoc beside the reference tokenizers (bench/README.md).
bench-tokenizer: deps
	BUILD=$(BUILD) bench/tokenizer_bench.sh

build: deps
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
