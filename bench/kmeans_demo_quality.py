"""k-means quality on the demo data: strata's clustering (the ml step of `strata run`) against
scikit-learn's KMeans(n_init=10, algorithm="lloyd") on the same scaled matrix.

Reads platinum/fct_transactions and platinum/ml_centroids of a warehouse with the Python reader
(formats/python), z-scores the features the ml step used (population std, float32, as strata),
fits scikit-learn with the same k, n_init, max_iter and tol, and evaluates strata's centroids on
the same matrix. Prints one JSON object. Usage: kmeans_demo_quality.py WAREHOUSE
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "formats", "python"))
import strata_reader  # noqa: E402


def main(wh):
    cen = strata_reader.read_file(os.path.join(wh, "platinum", "ml_centroids.strata"))
    feats = cen.meta["kv"]["features"].split(",")
    k = int(cen.meta["kv"]["k"])
    fct = strata_reader.read_file(os.path.join(wh, "platinum", "fct_transactions.strata"), columns=feats)
    x = np.stack([fct.columns[f].astype(np.float64) for f in feats], axis=1)
    xs = ((x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)).astype(np.float32)
    c = np.stack([cen.columns[f + "__scaled"] for f in feats], axis=1)
    xd = xs.astype(np.float64)
    strata_inertia = float(((xd[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).min(axis=1).sum())
    from sklearn.cluster import KMeans
    km = KMeans(n_clusters=k, n_init=10, algorithm="lloyd", max_iter=300, tol=1e-4, random_state=0).fit(xs)
    sk = float(((xd[:, None, :] - km.cluster_centers_.astype(np.float64)[None, :, :]) ** 2).sum(axis=2).min(axis=1).sum())
    print(json.dumps({"n": int(xs.shape[0]), "d": len(feats), "k": k, "features": feats,
                      "strata_inertia": strata_inertia, "sklearn_inertia": sk,
                      "relative_difference": (strata_inertia - sk) / sk}))


if __name__ == "__main__":
    main(sys.argv[1])
