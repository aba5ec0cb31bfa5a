# A thin layer over CMake: the README's two commands and their variants.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: run test test-asan build deps clean bench-tokenizer

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

# Tokenizer throughput, olmoc beside the reference tokenizers (bench/README.md).
bench-tokenizer: deps
	BUILD=$(BUILD) bench/tokenizer_bench.sh

build: deps
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan
