#!/usr/bin/env bash
# bench/scaling.sh: the measurements of bench/SCALING.md.
#   bash bench/scaling.sh [ROWS] [REPS] [PARTS]
#     (default: the demo's 500000 rows per table, 3 repetitions, 2 parts)
# One process with 1 and 2 threads against mpirun -np 1 and -np 2 (one
# thread per rank) on the same source, cut into PARTS rowid-range parts
# per transaction table (--part-rows, the same in every config, so every
# config writes the same bytes and np 2 splits ingest and stage as well as
# gold and ml), each run --force into its own
# warehouse; prints the median total and per-step seconds from the run
# logs, the bytes each rank handed to MPI collectives (STRATA_DIST_STATS=1)
# and the load average before and after. Needs build/strata and
# build/strata-mpi (make && make mpi).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-500000}
reps=${2:-3}
parts=${3:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/strata gen --out "$tmp/tx.db" --rows "$rows" >/dev/null 2>&1
mpi=(mpirun --allow-run-as-root --oversubscribe)
part_rows=$(( (rows + parts - 1) / parts ))
[ "$part_rows" -ge 1000 ] || part_rows=1000
common=(--customers data/chinook.db --transactions "$tmp/tx.db" --quiet --no-report --force --part-rows "$part_rows")
echo "rows per table: $rows; parts per table: $parts (--part-rows $part_rows); repetitions: $reps; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_cfg() { # name, command...
  local name=$1; shift
  for r in $(seq "$reps"); do
    "$@" "${common[@]}" --warehouse "$tmp/wh_$name" 2>"$tmp/err_$name"
    /usr/bin/python3 - "$tmp/wh_$name/_runs/latest.json" "$name" >>"$tmp/rows.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
steps = {s["name"]: s["seconds"] for s in d["steps"]}
print("\t".join([sys.argv[2], "%.3f" % d["seconds"]] + ["%.3f" % steps[k] for k in ("ingest", "stage", "intermediate", "ml", "marts")]))
PY
  done
}
run_cfg "1proc_1thr" build/strata run --threads 1
run_cfg "1proc_2thr" build/strata run --threads 2
run_cfg "np1_1thr" "${mpi[@]}" -np 1 build/strata-mpi run --threads 1
run_cfg "np2_1thr" "${mpi[@]}" -np 2 build/strata-mpi run --threads 1
# wall time of mpirun itself (start-up included), np 1 and 2
for n in 1 2; do
  s=$(date +%s.%N); "${mpi[@]}" -np $n build/strata-mpi run --threads 1 "${common[@]}" --warehouse "$tmp/wh_w$n" 2>/dev/null; e=$(date +%s.%N)
  echo "mpirun -np $n wall (with start-up): $(echo "$e - $s" | bc) s"
done
STRATA_DIST_STATS=1 "${mpi[@]}" -x STRATA_DIST_STATS -np 2 build/strata-mpi run --threads 1 "${common[@]}" \
  --warehouse "$tmp/wh_stats" 2>&1 | grep collectives || true
/usr/bin/python3 - "$tmp/rows.tsv" "$tmp/wh_stats/_runs/latest.json" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split("\t")
    rows.setdefault(f[0], []).append([float(x) for x in f[1:]])
print("| config | total s | ingest | stage | intermediate | ml | marts |")
print("|---|---|---|---|---|---|---|")
for k, v in rows.items():
    med = [statistics.median(c) for c in zip(*v)]
    print("| %s | " % k + " | ".join("%.3f" % x for x in med) + " |")
d = json.load(open(sys.argv[2]))
st = {s["name"]: s for s in d["steps"]}
print("source lines (ingest rows in): %d; gold customer-periods (ml rows in): %d" % (st["ingest"]["rows_in"], st["ml"]["rows_in"]))
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
