"""kmeans_sklearn.py: the scikit-learn side of the k-means comparison.

Makes a synthetic blob matrix (sklearn.datasets.make_blobs, seeded; cluster_std
4.0 so the blobs overlap and Lloyd needs ~20 iterations, as on real data), writes
it raw (row-major float64, and float32 for strata's driver bench/kmeans_bench.c)
so both cluster the very same numbers,
then times Lloyd k-means at a fixed thread count. n_init=10 is run as ten
seeded single-init fits (random_state = seed + i) so the total number of
Lloyd iterations is known (KMeans(n_init=10) only reports the best run's);
the best inertia of the ten is what KMeans(n_init=10) would keep.

Usage: /usr/bin/python3 kmeans_sklearn.py --n N --d D --k K --seed S
           --threads T --reps R --max-iter M --tol TOL [--out-f64 PATH]
Prints one JSON object.
"""
import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_info, threadpool_limits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-init", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--out-f64")
    ap.add_argument("--out-f32", help="the same matrix as float32, for bench/kmeans_bench.c")
    a = ap.parse_args()

    X, _ = make_blobs(n_samples=a.n, n_features=a.d, centers=a.k, cluster_std=4.0,
                      random_state=a.seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if a.out_f64:
        X.tofile(a.out_f64)
    if a.out_f32:
        X.astype(np.float32).tofile(a.out_f32)

    seconds, iters, inertia = [], 0, None
    with threadpool_limits(limits=a.threads):
        info = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "architecture", "version")}
                for p in threadpool_info()]
        for _ in range(a.reps):
            iters, best = 0, None
            t0 = time.perf_counter()
            for i in range(a.n_init):
                km = KMeans(n_clusters=a.k, n_init=1, init="k-means++", algorithm="lloyd",
                            max_iter=a.max_iter, tol=a.tol, random_state=a.seed + i).fit(X)
                iters += int(km.n_iter_)
                best = km.inertia_ if best is None else min(best, km.inertia_)
            seconds.append(time.perf_counter() - t0)
            inertia = float(best)
    print(json.dumps({"seconds": seconds, "total_iters": iters, "inertia": inertia,
                      "threadpool": info, "n": a.n, "d": a.d, "k": a.k}))


if __name__ == "__main__":
    main()
