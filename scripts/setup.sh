#!/usr/bin/env bash
# Installs what a fresh machine lacks for the test suite and the demo: the wasm target,
# wasm-bindgen-cli at exactly the version in Cargo.lock, Debian's Chromium and ChromeDriver,
# onnxruntime for python3.
# Idempotent: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$version" ]; then
  echo "[setup] could not find wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  log "installing wasm-bindgen-cli $version (a few minutes)"
  # Not --locked: one of its locked dependencies is no longer in the registry.
  cargo install wasm-bindgen-cli --version "$version"
fi

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# PostgreSQL for the collector's tests against a real server (they start a throwaway cluster).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# Mesa's lavapipe: a CPU Vulkan device, so the WebGPU scoring code (wgpu) is tested natively.
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null || missing+=(mesa-vulkan-drivers libvulkan1)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# onnxruntime and onnx for python3: the converter checks every bundle against onnxruntime on the
# original model (its tests require that comparison). Versions pinned with the fixtures'.
if ! python3 -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  log "installing onnxruntime, onnx and numpy for python3 (tests/fixtures/requirements.txt pins)"
  python3 -m pip install --quiet $(grep -E '^(onnx|onnxruntime|numpy)==' tests/fixtures/requirements.txt)
fi
log "ready: $(rustc --version), $(wasm-bindgen --version), $(chromium --version 2>/dev/null | head -1)"
