# radguard: the two commands a user needs are `make demo` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
RADGUARD_WERROR ?= OFF
JOBS ?= $(shell nproc)

.PHONY: all deps build demo test bench format clean sanitize fuzz ci-robust

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DRADGUARD_WERROR=$(RADGUARD_WERROR)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD_DIR)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The parsers and the robustness tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (docs/reliability.md). Leak checking is off: DCMTK keeps process-wide tables to the end.
SANITIZE_TESTS ?= NestingBomb|DecodeBudget|DeflateBomb|StructureCheck|PixelHeaders|MutationSmoke|Signatures|DicomFile|DeidMalformed|DeidEncodings|Staging|DicomSplice|WholeNumber|CodecAssertions
sanitize: deps
	cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRADGUARD_SANITIZE=ON
	cmake --build build-sanitize -j $(JOBS) --target radguard_tests signing_tests
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-sanitize --output-on-failure -j $(JOBS) -R '$(SANITIZE_TESTS)'

# libFuzzer targets (fuzz/), each run for FUZZ_SECONDS (CI: 30) from the seed corpus.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ=1 bash scripts/install-deps.sh
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# CI's robustness stage (.ci/run; docs/reliability.md): one clang build with ASan + UBSan and
# libFuzzer's coverage gives both the parser and robustness tests (SANITIZE_TESTS, which run
# first) and the fuzz targets of CI_FUZZ_TARGETS, each then run for CI_FUZZ_SECONDS from its
# seeds. (`make sanitize` is the same tests built with gcc, without the coverage.)
ROBUST_DIR ?= build-fuzz
CI_FUZZ_SECONDS ?= 20
# A fixed seed: CI fails on what a change brings, not on what chance finds that day (that is
# `make fuzz`'s job, with a new seed every run); fuzz/findings/ is replayed every time.
CI_FUZZ_SEED ?= 1
CI_FUZZ_TARGETS ?= dicom recipe consent_csv consent_fhir redaction_rules nifti inv3 signature \
  manifest pixels_jpeg_baseline pixels_jpeg_lossless pixels_jpeg_ls pixels_jpeg2000 pixels_rle
ci-robust:
	FUZZ=1 bash scripts/install-deps.sh
	cmake -S . -B $(ROBUST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRADGUARD_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16
	cmake --build $(ROBUST_DIR) -j $(JOBS) --target radguard_tests signing_tests \
	  $(addprefix fuzz_,$(CI_FUZZ_TARGETS))
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ROBUST_DIR) --output-on-failure -j $(JOBS) -R '$(SANITIZE_TESTS)'
	FUZZ_SEED=$(CI_FUZZ_SEED) bash fuzz/run.sh $(ROBUST_DIR) $(CI_FUZZ_SECONDS) $(CI_FUZZ_TARGETS)

bench: build
	bash bench/deid_bench.sh $(BUILD_DIR)

format:
	find src apps tests tools bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-sanitize build-fuzz
