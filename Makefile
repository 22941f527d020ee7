# Thin wrapper over CMake + Ninja. The two commands a newcomer needs:
#   make run    install what is missing, build (release), start metarelay on :4000 with SQLite in ./data
#   make test   install what is missing, build with ASan+UBSan, run every test
.PHONY: all deps build build-asan run test unit e2e clients bench fmt clean

JOBS ?= $(shell nproc)

all: build

deps:
	@scripts/deps.sh

build/release/build.ninja:
	cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
build/asan/build.ninja:
	cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMETARELAY_SANITIZE=ON

build: deps build/release/build.ninja
	cmake --build build/release -j $(JOBS)

build-asan: deps build/asan/build.ninja
	cmake --build build/asan -j $(JOBS)

run: build
	mkdir -p data
	HOST=$${HOST:-127.0.0.1} ./build/release/metarelay serve

unit: build-asan
	cd build/asan && ctest --output-on-failure -j $(JOBS)

e2e: build-asan
	METARELAY_BIN=$(CURDIR)/build/asan/metarelay FAKERELAY_BIN=$(CURDIR)/build/asan/fakerelay \
	  node --test --test-concurrency=1 tests/e2e/

test: unit e2e

# The real coding-agent clients (Claude Code, Codex CLI) against metarelay, offline. Not part
# of `make test`: the first run installs ~1 GB of native npm packages (tests/clients/).
clients: build-asan
	tests/clients/run-claude-code.sh
	tests/clients/run-codex.sh

bench:
	@scripts/deps.sh --bench
	$(MAKE) build
	bench/run

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
