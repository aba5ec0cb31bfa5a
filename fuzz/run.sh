#!/bin/sh
# make fuzz: runs the fuzz targets one after another (never two at once), each
# for SECONDS, growing BUILD/corpus/<target> from the seeds in
# fuzz/corpus/<target>, and prints one line per target: executions and
# libFuzzer's coverage figures (cov: edges, ft: features). A crash, leak,
# timeout or out-of-memory leaves its input in BUILD/artifacts/<target>/, its
# report in BUILD/fuzz-<target>.log, and makes the script exit 1 at the end.
#   usage: fuzz/run.sh BUILD SECONDS [TARGET...]
set -u
export LC_ALL=C # libFuzzer's log lines may hold any bytes; sed must match them
cd "$(dirname "$0")/.."
build=$1
seconds=$2
shift 2
targets=${*:-safetensors quantized program config tokenizer tokenizer_dolma2 ir ir_passes chat}

# Largest input per target, in bytes: room for the seeds and some growth,
# small enough that an execution stays cheap.
max_len() {
  case $1 in
  safetensors | tokenizer) echo 16384 ;;
  ir | ir_passes | chat) echo 8192 ;;
  *) echo 4096 ;;
  esac
}

# The seed directory: ir_passes starts from the IR seeds.
seeds() {
  case $1 in
  ir_passes) echo fuzz/corpus/ir ;;
  *) echo "fuzz/corpus/$1" ;;
  esac
}

failed=""
for t in $targets; do
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  log=$build/fuzz-$t.log
  dict=""
  [ -f "fuzz/${t%_passes}.dict" ] && dict="-dict=fuzz/${t%_passes}.dict"
  # shellcheck disable=SC2086
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t/" $dict "$build/corpus/$t" "$(seeds "$t")" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  last=$(grep -aE '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
  printf '%-17s %4ss  execs: %-9s cov: %-5s ft: %-6s corpus: %s\n' "$t" "$seconds" \
    "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [ $rc -ne 0 ]; then
    failed="$failed $t"
    echo "  FAILED (exit $rc): see $log; input saved in $build/artifacts/$t/:"
    grep -aE 'ERROR:|SUMMARY:|fuzz invariant|runtime error|Test unit written' "$log" | head -n 8 |
      sed 's/^/    /'
  fi
done
[ -z "$failed" ] || {
  echo "fuzz: failures in:$failed"
  exit 1
}
