#!/usr/bin/env bash
# Regenerate pith.json: `pith attest verify --json` for every Intel (sgx-*, tdx-*) case of
# testdata/attestation/, at the case's `at`, with its collateral directory. The SDK's
# test/intel-evidence.test.ts checks @pith/sdk's browser verifier against these verdicts.
#   PITH_BIN=target/debug/pith testdata/vectors/intel-evidence/make.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/../../attestation"
pith="${PITH_BIN:-pith}"
{
  echo "{"
  first=1
  for d in "$corpus"/sgx-* "$corpus"/tdx-*; do
    name=$(basename "$d")
    at=$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('$d/expect.json','utf8')).at)")
    out=$("$pith" attest verify --json --collateral "$d/collateral" --at "$at" "$d/evidence.bin" || true)
    [ $first = 1 ] || echo ","
    first=0
    printf '  "%s": %s' "$name" "$out"
  done
  echo
  echo "}"
} > "$here/pith.json"
node -e "const j=require('$here/pith.json'); console.log(Object.keys(j).length + ' cases')"
