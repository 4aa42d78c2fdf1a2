#!/usr/bin/env bash
# bench/run.sh: `make bench`. Builds strata with release flags into its own
# build directory, installs the peers (Debian packages through
# scripts/deps.sh; DuckDB through npm, pinned in bench/package-lock.json),
# builds the small C helpers of bench/, then hands over to bench/bench.py,
# which generates the data, runs every comparison and writes
# bench/results/latest.{md,json}.
#
#   BENCH_QUICK=1   small data, one repetition (a smoke run, seconds)
#   BENCH_SCALE=100M  also the 100M+100M scale (when the disk has room)
#   BENCH_THREADS=N thread count for every engine (default: online CPUs)
#   BENCH_ONLY=a,b  run only these comparisons (ingest,e2e,features,size,
#                   decode,kmeans,sqlite)
#
# Never part of `make test` or CI: it measures, it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD:-build/release}
CC=${CC:-cc}
mkdir -p "$BUILD/bench"

echo "bench: checking packages (scripts/deps.sh bench)"
bash scripts/deps.sh bench

# Release build. x86-64-v2 is the baseline every supported CPU has; AVX2
# and AVX-512 kernels are chosen at run time inside the code.
# NDEBUG can turn an assert-only variable into an unused-variable error and
# -O3 can raise warnings -O2 does not: fall back step by step.
built=0
for REL_CFLAGS in "-O3 -march=x86-64-v2 -g -DNDEBUG" "-O3 -march=x86-64-v2 -g" "-O2 -march=x86-64-v2 -g"; do
  echo "bench: release build into $BUILD ($REL_CFLAGS)"
  # objects built with other flags are not reused
  [ "$(cat "$BUILD/bench/cflags" 2>/dev/null)" = "$REL_CFLAGS" ] || rm -rf "$BUILD/obj"
  echo "$REL_CFLAGS" >"$BUILD/bench/cflags"
  if make -s BUILD="$BUILD" CFLAGS="$REL_CFLAGS" all >"$BUILD/build.log" 2>&1; then built=1; break; fi
  rm -rf "$BUILD/obj"
done
if [ $built = 0 ]; then
  echo "bench: the release build failed (see $BUILD/build.log); strata's side will be 'not available'" >&2
fi

# DuckDB: the npm package carries the native library; nothing else is fetched.
lock_stamp="bench/node_modules/.bench-lock"
if [ ! -d bench/node_modules/@duckdb/node-api ] || ! cmp -s bench/package-lock.json "$lock_stamp" 2>/dev/null; then
  echo "bench: installing DuckDB (npm ci --prefix bench)"
  if [ -f bench/package-lock.json ]; then
    npm ci --prefix bench --no-audit --no-fund --loglevel=error
  else
    npm install --prefix bench --no-audit --no-fund --loglevel=error
  fi
  cp bench/package-lock.json "$lock_stamp"
fi

# C helpers. Those linking libstrata fall back (or are skipped) while the
# library does not have the API they need yet.
SQLITE_LIBS=$(pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)
ZSTD_LIBS=$(pkg-config --libs libzstd 2>/dev/null || echo -lzstd)
HCFLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -pthread -Iinclude"
$CC $HCFLAGS bench/sqlite_scan.c -o "$BUILD/bench/sqlite_scan" $SQLITE_LIBS
rm -f "$BUILD/bench/decode_bench" "$BUILD/bench/decode_bench.strata"
if [ -f "$BUILD/libstrata.a" ] && $CC $HCFLAGS bench/decode_bench.c -o "$BUILD/bench/decode_bench" \
     "$BUILD/libstrata.a" $ZSTD_LIBS $SQLITE_LIBS -lm 2>"$BUILD/bench/decode_bench.log"; then
  touch "$BUILD/bench/decode_bench.strata"
else
  $CC $HCFLAGS -DBENCH_NO_STRATA bench/decode_bench.c -o "$BUILD/bench/decode_bench" $ZSTD_LIBS $SQLITE_LIBS
fi
rm -f "$BUILD/bench/sqlite_to_strata" "$BUILD/bench/kmeans_bench"
if [ -f "$BUILD/libstrata.a" ]; then
  $CC $HCFLAGS bench/sqlite_to_strata.c -o "$BUILD/bench/sqlite_to_strata" \
    "$BUILD/libstrata.a" $ZSTD_LIBS $SQLITE_LIBS -lm 2>"$BUILD/bench/sqlite_to_strata.log" || true
  # the ml module's own driver (bench/kmeans_bench.c), when it is there
  [ -f bench/kmeans_bench.c ] && { $CC $HCFLAGS bench/kmeans_bench.c -o "$BUILD/bench/kmeans_bench" \
    "$BUILD/libstrata.a" $ZSTD_LIBS $SQLITE_LIBS -lm 2>"$BUILD/bench/kmeans_bench.log" || true; }
fi

exec /usr/bin/python3 bench/bench.py --build "$BUILD"
