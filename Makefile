# A thin layer over CMake: the README's two commands and their variants.
BUILD ?= build
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 60

.PHONY: run test test-asan fuzz valgrind build deps clean bench-tokenizer

# Build everything and let the bundled model continue a prompt.
run: build
	./$(BUILD)/olmoc run -p "Language modeling is " -n 64

# Build with -Werror and run the whole test suite.
test: deps
	cmake -S . -B $(BUILD) -DOLMOC_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD)-asan -DOLMOC_WERROR=ON -DOLMOC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS)

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
