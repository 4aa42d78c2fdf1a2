#!/usr/bin/env bash
# Makes sure the Debian packages a make target needs are installed.
# As root: installs what is missing (apt-get, quietly, once).
# Otherwise: prints the exact command to run and fails.
#   deps.sh base     compiler deps: libsqlite3-dev libzstd-dev pkg-config
#   deps.sh test     + libcriterion-dev
#   deps.sh python   + python3-numpy python3-zstandard python3-pandas python3-pip python3-setuptools (Python reader tests)
#   deps.sh mpi      + openmpi-bin libopenmpi-dev (make mpi: build/strata-mpi, the MPI tests)
#   deps.sh fuzz     + clang
#   deps.sh bench    + python3-sklearn, OpenBLAS for numpy (the peer a pip user has), nodejs, npm (DuckDB, see bench/)
#   deps.sh browser  + chromium (dashboard test)
#   deps.sh duckdb   + nodejs, npm, then DuckDB's Node package pinned in bench/package-lock.json
#                    (`npm ci --prefix bench`, only when the lock changed; Parquet read-back test)
set -eu
want=(libsqlite3-dev libzstd-dev pkg-config sqlite3)
case "${1:-base}" in
  base) ;;
  test) want+=(libcriterion-dev) ;;
  python) want+=(python3-numpy python3-zstandard python3-pandas python3-pip python3-setuptools) ;;
  mpi) want+=(openmpi-bin libopenmpi-dev) ;;
  fuzz) want+=(clang libclang-rt-14-dev) ;;
  bench) want+=(python3-numpy python3-zstandard python3-sklearn libopenblas0-pthread zstd nodejs npm) ;;
  browser) want+=(chromium) ;;
  duckdb) want+=(nodejs npm) ;;
  *) echo "deps.sh: unknown set '$1'" >&2; exit 2 ;;
esac
# After the Debian packages: the npm package of the duckdb set.
finish() {
  if [ "${1:-base}" = duckdb ]; then
    cd "$(dirname "$0")/.."
    stamp=bench/node_modules/.bench-lock
    # one npm ci at a time (make -j runs the C and Python tests side by side)
    exec 9>bench/.npm-ci.lock
    flock 9
    if [ ! -d bench/node_modules/@duckdb/node-api ] || ! cmp -s bench/package-lock.json "$stamp" 2>/dev/null; then
      echo "deps: installing DuckDB for Node (npm ci --prefix bench)" >&2
      npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
      cp bench/package-lock.json "$stamp"
    fi
    exec 9>&-
  fi
  exit 0
}
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && finish "${1:-base}"
# nodejs/npm may come from elsewhere than Debian: accept them when on PATH.
if [ "${1:-}" = bench ] || [ "${1:-}" = duckdb ]; then
  keep=(); for p in "${missing[@]}"; do
    case "$p" in nodejs) command -v node >/dev/null || keep+=("$p");; npm) command -v npm >/dev/null || keep+=("$p");; *) keep+=("$p");; esac
  done; missing=("${keep[@]}"); [ ${#missing[@]} -eq 0 ] && finish "$1"
fi
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "strata needs Debian packages that are missing. Run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
finish "${1:-base}"
