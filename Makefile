# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
export CHROMEDRIVER ?= /usr/bin/chromedriver
WASM_TARGET := wasm32-unknown-unknown

.PHONY: setup test test-native test-browser demo size

setup:
	scripts/setup.sh

## Every test: native core and CLI, then the SDK in headless Chromium.
test: setup test-native test-browser

test-native:
	cargo test --workspace --locked

test-browser:
	scripts/test-browser.sh

## The example storefront page on the committed fixture models.
demo: setup
	scripts/demo.sh

## Release wasm size (raw and gzip -9), the figure the README reports.
size: setup
	scripts/size.sh
