# Thin wrapper around CMake. `make run` and `make test` are the two commands
# the README promises on a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build run test asan-test bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/branchgate serve

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBG_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# Every bench/ script (tools installed first), each bounded by BENCH_TIMEOUT
# seconds; results go to docs/performance.md, then bench/summary.sh puts the
# key figures at its top. Fails at the end if a script failed (bench/README.md).
BENCH_TIMEOUT ?= 1800
bench: build
	@bash bench/install-tools.sh
	@failed=""; for s in bench/*.sh; do \
	    case $$s in bench/lib.sh|bench/install-tools.sh|bench/summary.sh) continue ;; esac; \
	    echo "== $$s"; \
	    BRANCHGATE_BIN=$(CURDIR)/$(BUILD)/branchgate timeout -k 60 $(BENCH_TIMEOUT) bash $$s || failed="$$failed $$s"; \
	done; \
	echo "== bench/summary.sh"; bash bench/summary.sh >/dev/null || failed="$$failed bench/summary.sh"; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed" >&2; exit 1; fi

# Every tests/fuzz target (clang, libFuzzer, ASan/UBSan) for FUZZ_SECONDS
# each on a copy of the seed corpus in $(FUZZ_BUILD); fails on any finding.
# FUZZ_TARGETS="url jwt" runs only those (docs/testing.md, "Fuzzing").
fuzz: deps
	@scripts/install-fuzz-deps.sh
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DBG_FUZZ=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(FUZZ_BUILD) --target bg_fuzz -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
