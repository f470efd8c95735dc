# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
export CHROMEDRIVER ?= /usr/bin/chromedriver
WASM_TARGET := wasm32-unknown-unknown

.PHONY: setup test lint test-native test-browser test-e2e test-fuzz demo size bench

setup:
	scripts/setup.sh

## Every test: the layering and lint gates, native core and CLI, the SDK in headless Chromium,
## then end to end (the npm package, the demo store with the collector, the package in a fresh
## Vite app), then every parser of outside bytes under libFuzzer for 10 s each.
test: setup lint test-native test-browser test-e2e test-fuzz

## Imports only point down the layers (ARCHITECTURE.md), formatting, clippy without warnings on
## native and wasm32 with all features and with none. (`tsc --noEmit` on the npm types runs with
## the npm tests in test-e2e.)
lint:
	scripts/check-layers.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy -p foresight --no-default-features --all-targets --locked -- -D warnings
	cargo clippy -p foresight --target $(WASM_TARGET) --features webgpu,bench,import --all-targets --locked -- -D warnings
	# The shipped core (no graph runtime, no wgpu), the lean NNEF build, and the tract and WebGPU
	# modules it fetches.
	cargo clippy -p foresight --target $(WASM_TARGET) --no-default-features --features web --all-targets --locked -- -D warnings
	cargo clippy -p foresight --target $(WASM_TARGET) --no-default-features --features web,tract --lib --locked -- -D warnings
	cargo clippy -p foresight-tract --target $(WASM_TARGET) --all-targets --locked -- -D warnings
	cargo clippy -p foresight-gpu --target $(WASM_TARGET) --all-targets --locked -- -D warnings
	# The hot loops' SIMD paths (wasm32 with simd128 only).
	cargo clippy -p foresight-kernels --target $(WASM_TARGET) --all-targets --locked -- -D warnings

test-native:
	scripts/fetch-data.sh
	cargo test --workspace --locked
	# The core without a graph runtime (what the shipped wasm carries).
	cargo test -p foresight --no-default-features --lib --locked
	# The WebGPU scoring code on a real Vulkan device (Mesa's lavapipe, installed by setup).
	XDG_RUNTIME_DIR=$${XDG_RUNTIME_DIR:-/tmp} cargo test -p foresight --features webgpu --test gpu --locked

test-browser:
	scripts/test-browser.sh

test-e2e:
	scripts/test-e2e.sh

## The CI-lite fuzz run (tests/fuzz/README.md; `scripts/fuzz.sh` alone runs 60 s per target).
test-fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-10} scripts/fuzz.sh

## The demo film store (MovieLens-100K, a model trained here, signed bundles) with the
## collector on SQLite; `make demo DATA=tafeng`: the same store on the Ta Feng grocery's products.
demo: setup
	DATA=$(DATA) scripts/demo.sh

## Release wasm size (raw and gzip -9), the figure the README reports.
size: setup
	scripts/size.sh

## Foresight vs onnxruntime-web in headless Chromium (its step models included): rewrites
## bench/RESULTS.md, which names the commit it measured; fails if any timed answer differs.
bench: setup
	scripts/bench.sh
