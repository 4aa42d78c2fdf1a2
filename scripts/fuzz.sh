#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer target (clang, ASan+UBSan)
# linked with the library sources, and runs each for $1 seconds (default 60)
# over its seed corpus tests/fuzz/corpus/<name>/ (copied to a scratch dir so
# the checked-in corpus only changes by hand). FUZZ_TARGETS="fuzz_a fuzz_b"
# limits the run to those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out"
# engine/dist_mpi.c is the MPI build's world (needs mpi.h); the targets link the single-rank one
srcs=$(ls engine/*.c formats/*.c pipeline/*.c pipeline/*/*.c ml/*.c | grep -v -e '^pipeline/main.c$' -e '^engine/dist_mpi.c$')
flags="-std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -Iengine -Iformats -Ipipeline -Ipipeline/quality -Ipipeline/report -Iml -pthread"
libs="$(pkg-config --libs sqlite3 libzstd) -lm -pthread"
status=0
for f in tests/fuzz/fuzz_*.c; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .c)
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  echo "== $name: build"
  # shellcheck disable=SC2086
  clang $flags -o "$out/$name" "$f" $srcs $libs
  work="$out/$name.corpus"; rm -rf "$work"; mkdir -p "$work"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
  echo "== $name: run ${secs}s"
  if ! "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/$name-" "$work" > "$out/$name.log" 2>&1; then
    echo "FAIL $name: see $out/$name.log"; tail -40 "$out/$name.log"; status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$out/$name.log" | tail -2
    echo "ok $name"
  fi
done
exit $status
