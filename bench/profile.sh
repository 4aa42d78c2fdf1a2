#!/usr/bin/env bash
# bench/profile.sh: where the time goes, per stage. Samples each strata step
# (and the peers' hot loops for comparison) with `perf record -e cpu-clock`
# (a software clock: works in VMs without hardware counters) or, when perf
# is missing, valgrind --tool=callgrind, and writes the top symbols of each
# to bench/results/profile.md. The "bound by" column of bench/README.md is
# written from this file.
#
# Run after `make bench` (it reuses build/release and bench/data):
#   bash bench/profile.sh [SCALE]      SCALE: a tx_<SCALE>.db in bench/data (default 10M)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD:-build/release}
SCALE=${1:-10M}
DB=bench/data/tx_$SCALE.db
WH=bench/data/wh_$SCALE
OUT=bench/results/profile.md
THREADS=${BENCH_THREADS:-$(nproc)}
TOP=${PROFILE_TOP:-12}
[ -f "$DB" ] || { echo "profile: $DB missing: run make bench first" >&2; exit 1; }
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

use_perf=0
if command -v perf >/dev/null && perf record -e cpu-clock -o "$tmp/probe" true >/dev/null 2>&1; then use_perf=1; fi

profile() { # name, command...
  local name=$1; shift
  echo "profile: $name" >&2
  {
    echo "## $name"
    echo
    echo '```'
    echo "\$ ${*#$PWD/}"
    if [ $use_perf = 1 ]; then
      perf record -q -e cpu-clock -F 1999 -g -o "$tmp/perf.data" -- "$@" >/dev/null 2>"$tmp/err" || { tail -1 "$tmp/err"; }
      { perf report -i "$tmp/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n "$TOP"; } || true
    else
      valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" >/dev/null 2>"$tmp/err" || tail -1 "$tmp/err"
      { callgrind_annotate "$tmp/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -n "$TOP"; } || true
    fi
    echo '```'
    echo
  } >>"$OUT.tmp"
}

{
  echo "# strata profile ($SCALE, $THREADS threads, $(date -u +%Y-%m-%d))"
  echo
  echo "Top symbols by self time (perf cpu-clock samples, or callgrind Ir when perf is missing)."
  echo "Regenerate: \`bash bench/profile.sh $SCALE\` after \`make bench\`."
  echo
} >"$OUT.tmp"

profile "peer: sqlite3_step scan (ingest floor)" "$BUILD/bench/sqlite_scan" "$DB" sales_qty foc_qty
if [ -x "$BUILD/strata" ] && "$BUILD/strata" run --help >/dev/null 2>&1; then
  run=("$BUILD/strata" run --customers data/chinook.db --transactions "$DB" --warehouse "$WH" --threads "$THREADS" --quiet)
  "${run[@]}" --force >/dev/null 2>&1 || true
  for step in ingest stage intermediate ml marts report; do
    profile "strata run --only $step" "${run[@]}" --only "$step" --force
  done
  if [ -f "$BUILD/bench/decode_bench.strata" ] && [ -f "$WH/silver/stg_sales_transactions.strata" ]; then
    profile "decode: strata integer columns + zstd peer" "$BUILD/bench/decode_bench" --strata "$WH/silver/stg_sales_transactions.strata" --reps 5
  fi
else
  echo "(strata run is not available in $BUILD: only the peers were profiled)" >>"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
echo "profile: wrote $OUT" >&2
