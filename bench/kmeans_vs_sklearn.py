"""kmeans_vs_sklearn.py: quality and speed of strata's k-means against
scikit-learn's, on the same scaled float32 matrix.

For each case (n points, d features, k clusters) it draws overlapping
Gaussian blobs (seeded), z-scores them (StandardScaler), casts to float32,
writes the matrix raw for bench/kmeans_bench.c (built against
build/libstrata.a by this script), and runs
  sklearn KMeans(n_clusters=k, init="k-means++", n_init=1, algorithm="lloyd",
                 max_iter, tol, random_state=seed+i) for i in 0..n_init-1
(ten single-init fits = KMeans(n_init=10) with the total iteration count
known; the best inertia is what n_init=10 keeps) and strata with
n_init=10. It prints inertia (relative difference; strata must be within
0.1%), total Lloyd iterations, wall time and points/s/core/iter for both.
Not part of `make test` (needs scikit-learn): run it by hand:

  /usr/bin/python3 bench/kmeans_vs_sklearn.py [--n 1000000] [--threads 1]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_driver(out):
    src = os.path.join(ROOT, "bench", "kmeans_bench.c")
    lib = os.path.join(ROOT, "build", "libstrata.a")
    subprocess.run(["make", "-C", ROOT, "-s", "build/libstrata.a"], check=True)
    subprocess.run(["cc", "-std=c11", "-O2", "-I" + os.path.join(ROOT, "include"), "-o", out, src, lib,
                    "-lsqlite3", "-lzstd", "-lm", "-pthread"], check=True)


def blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    lab = rng.integers(0, k, size=n)
    x = centres[lab] + rng.normal(scale=4.0, size=(n, d))
    return StandardScaler().fit_transform(x).astype(np.float32)


def run_case(driver, tmp, n, d, k, a):
    x = blobs(n, d, k, a.seed)
    path = os.path.join(tmp, f"x_{n}_{d}_{k}.f32")
    x.tofile(path)
    with threadpool_limits(limits=a.threads):
        t0 = time.perf_counter()
        iters, best = 0, None
        for i in range(a.n_init):
            km = KMeans(n_clusters=k, init="k-means++", n_init=1, algorithm="lloyd", max_iter=a.max_iter,
                        tol=a.tol, random_state=a.seed + i).fit(x)
            iters += int(km.n_iter_)
            best = km.inertia_ if best is None else min(best, km.inertia_)
        sk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = subprocess.run([driver, path, str(d), str(k), str(a.n_init), str(a.max_iter), str(a.tol), str(a.seed),
                          str(a.threads)], check=True, capture_output=True, text=True).stdout
    st_wall = time.perf_counter() - t0
    st = json.loads(out)
    rel = (st["inertia"] - best) / best
    print(f"n={n} d={d} k={k} threads={a.threads} kernel={st['kernel']}")
    print(f"  sklearn: inertia {best:.8g}  iters {iters}  {sk_s:.3f} s  "
          f"{n * iters / sk_s / a.threads / 1e6:.1f} M points/s/core/iter (whole fit)")
    print(f"  strata : inertia {st['inertia']:.8g}  iters {st['total_iters']}  {st['seconds']:.3f} s "
          f"(k-means++ {st['init_seconds']:.3f} s, Lloyd {st['lloyd_seconds']:.3f} s, process {st_wall:.3f} s)  "
          f"{n * st['total_iters'] / st['seconds'] / a.threads / 1e6:.1f} M points/s/core/iter (whole fit), "
          f"{st['lloyd_points_per_s_per_core_per_iter'] / 1e6:.1f} M in Lloyd")
    print(f"  inertia strata vs sklearn: {rel * 100:+.4f}%  ({'ok' if rel <= 1e-3 else 'WORSE than 0.1%'}); "
          f"speed-up (whole fit) {sk_s / st['seconds']:.1f}x")
    sys.stdout.flush()
    return rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-init", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    with tempfile.TemporaryDirectory() as tmp:
        driver = os.path.join(tmp, "kmeans_bench")
        build_driver(driver)
        worst = max(run_case(driver, tmp, a.n, d, k, a) for d, k in ((3, 3), (7, 8)))
    sys.exit(0 if worst <= 1e-3 else 1)


if __name__ == "__main__":
    main()
