#!/usr/bin/env bash
# scripts/fuzz.sh — fuzz the PostgreSQL protocol reader and the SCRAM server (pgwire/) with
# libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer (clang-14, Debian), in a build
# directory of its own (build-fuzz/), so the normal gcc build is untouched.
#
#   scripts/fuzz.sh                          60 s
#   scripts/fuzz.sh -runs=10000000           ten million executions
#   scripts/fuzz.sh -max_total_time=600      any libFuzzer option is passed through
#   DTX_FUZZ_JOBS=1 scripts/fuzz.sh          compile with one job (default 2)
#
# The corpus grows in build-fuzz/corpus/pgwire, seeded from tests/fuzz/corpus (valid message
# streams and SCRAM exchanges: tests/fuzz/make_corpus.py). A crash leaves its input in
# build-fuzz/crash-* and the script exits non-zero; replay it with
#   build-fuzz/tests/fuzz/pgwire_fuzz build-fuzz/crash-<hash>
# Runs on one core at nice 10 (the machine is shared).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD_DIR=${DTX_FUZZ_BUILD_DIR:-build-fuzz}
CC_BIN=${DTX_FUZZ_CC:-clang-14}
CXX_BIN=${DTX_FUZZ_CXX:-clang++-14}

if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  CC=$CC_BIN CXX=$CXX_BIN CCACHE_BASEDIR=$REPO CCACHE_NOHASHDIR=1 \
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDTX_FUZZ=ON -DDTX_SANITIZE=address,undefined \
      -DDTX_BUILD_TESTS=OFF -DDTX_BUILD_BENCH=OFF -DDTX_BUILD_EXAMPLES=OFF >/dev/null
fi
CCACHE_BASEDIR=$REPO CCACHE_NOHASHDIR=1 \
  nice -n 10 cmake --build "$BUILD_DIR" -j "${DTX_FUZZ_JOBS:-2}" --target pgwire_fuzz

CORPUS=$BUILD_DIR/corpus/pgwire
mkdir -p "$CORPUS"
args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then
  args=(-max_total_time=60)
fi
echo "fuzz: $BUILD_DIR/tests/fuzz/pgwire_fuzz ${args[*]} (corpus $CORPUS, seeds tests/fuzz/corpus)"
exec nice -n 10 "$BUILD_DIR/tests/fuzz/pgwire_fuzz" "$CORPUS" tests/fuzz/corpus \
  -artifact_prefix="$BUILD_DIR/" -print_final_stats=1 "${args[@]}"
