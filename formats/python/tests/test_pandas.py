"""Tests of the pandas-facing API of strata_reader: to_pandas() on every
column type with NULLs (nullable dtypes, the float NaN option), columns=
projection reading fewer bytes (counted through a file wrapper),
iter_chunks() with bounded memory (tracemalloc), installing the package
with pip without network, and the README's "Using the layers from other
tools" examples run as written.

Fixtures come from tests/fixtures.c, compiled and run by test_reader's
module setup (reused here).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
REPO = HERE.parents[2]

import numpy as np  # noqa: E402

import strata_reader as sr  # noqa: E402
import test_reader  # noqa: E402

try:
    import pandas as pd
except ImportError:  # scripts/deps.sh python installs python3-pandas
    pd = None


def setUpModule():
    test_reader.setUpModule()


def tearDownModule():
    test_reader.tearDownModule()


def fixture(name):
    return os.path.join(test_reader.FIXTURES, name)


EXPECTED_DTYPES = {"bool": "boolean", "int32": "Int32", "int64": "Int64", "float64": "Float64", "string": "string",
                   "bytes": "object"}


@unittest.skipIf(pd is None, "pandas is missing: apt-get install python3-pandas (scripts/deps.sh python)")
class ToPandas(unittest.TestCase):
    def check_frame(self, path):
        t = sr.read_file(path)
        df = t.to_pandas()
        self.assertEqual(list(df.columns), t.column_names())
        self.assertEqual(len(df), t.num_rows)
        for (name, typ, _, _), ref in zip(t.schema, t.to_pylist()):
            col = df[name]
            self.assertEqual(str(col.dtype), EXPECTED_DTYPES[typ], f"{path}: {name}")
            isna = col.isna().tolist()
            self.assertEqual(isna, [v is None for v in ref], f"{path}: {name}: NULLs must be missing values")
            for i, (v, missing) in enumerate(zip(ref, isna)):
                if missing:
                    continue
                got = col.iloc[i]
                if typ == "float64" and np.isnan(v):
                    self.assertTrue(np.isnan(got), f"{path}: {name} row {i}: a stored NaN stays NaN")
                else:
                    self.assertEqual(got, v, f"{path}: {name} row {i}")
        return t, df

    def test_every_type_with_nulls(self):
        n = 0
        for path in test_reader.fixture_files():
            if "_n1_" in path or "_n2_" in path or path.endswith(("empty.strata", "meta.strata", "small.strata")):
                t, _ = self.check_frame(path)
                n += 1
        self.assertGreater(n, 20)
        t = sr.read_file(fixture("m_e9_n1_z1_r300.strata"))
        self.assertEqual({typ for _, typ, _, _ in t.schema}, set(EXPECTED_DTYPES), "the fixture covers every type")
        self.assertTrue(all(v is not None for v in t.validity.values()), "and has NULLs in every column")

    def test_float_nan_option(self):
        t = sr.read_file(fixture("m_e9_n1_z1_r300.strata"))
        df = t.to_pandas(float_nan=True)
        for name, typ, _, _ in t.schema:
            if typ != "float64":
                continue
            self.assertEqual(str(df[name].dtype), "float64")
            nulls = ~t.validity[name]
            self.assertTrue(np.isnan(df[name].to_numpy()[nulls]).all())
            ok = ~nulls
            np.testing.assert_array_equal(df[name].to_numpy()[ok], t.columns[name][ok])


class CountingFile:
    """A binary file that counts the bytes read through it."""

    def __init__(self, path):
        self._fh = open(path, "rb")
        self.name = path
        self.bytes_read = 0
        self.reads = 0

    def read(self, n=-1):
        data = self._fh.read(n)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def seek(self, off, whence=0):
        return self._fh.seek(off, whence)

    def tell(self):
        return self._fh.tell()

    def close(self):
        self._fh.close()


class Projection(unittest.TestCase):
    def test_columns_reads_only_their_blocks(self):
        path = fixture("big/big.strata")
        size = os.path.getsize(path)
        whole = CountingFile(path)
        full = sr.read_file(whole)
        whole.close()
        self.assertGreaterEqual(whole.bytes_read, size, "reading every column reads the whole file")
        one = CountingFile(path)
        t = sr.read_file(one, columns=["id"])
        one.close()
        id_bytes = sum(b["size_bytes"] for b in t.blocks["id"])
        overhead = size - sum(sum(b["size_bytes"] for b in full.blocks[c]) for c in full.column_names())
        self.assertLessEqual(one.bytes_read, id_bytes + overhead, "only the header, footer and id blocks")
        self.assertLess(one.bytes_read, size * 0.6)
        np.testing.assert_array_equal(t.columns["id"], full.columns["id"])
        self.assertEqual(t.column_names(), ["id"])


class IterChunks(unittest.TestCase):
    def test_one_chunk_at_a_time_with_bounded_memory(self):
        path = fixture("big/big.strata")
        tracemalloc.start()
        full = sr.read_file(path)
        _, peak_full = tracemalloc.get_traced_memory()
        total = int(full.columns["id"].sum(dtype=np.uint64))
        del full
        tracemalloc.stop()
        tracemalloc.start()
        gen = sr.iter_chunks(path)
        first = next(gen)
        self.assertEqual(first.num_rows, 65536)
        del first
        gen.close()
        _, peak_one = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        rows, chunks, s = 0, 0, 0
        for chunk in sr.iter_chunks(path):
            self.assertLessEqual(chunk.num_rows, 65536)
            self.assertEqual(len(chunk.columns["s"]), chunk.num_rows)
            rows += chunk.num_rows
            chunks += 1
            s += int(chunk.columns["id"].sum(dtype=np.uint64))
            del chunk
        _, peak_iter = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.assertEqual((rows, chunks), (300000, 5))
        self.assertEqual(s % 2**64, total)
        # memory of one chunk whatever the number of chunks, not of the table
        self.assertLess(peak_iter, peak_one * 1.5, f"5 chunks peak {peak_iter} vs 1 chunk peak {peak_one}")
        self.assertLess(peak_iter, peak_full / 2, f"iter peak {peak_iter} vs whole-file peak {peak_full}")


class PipInstall(unittest.TestCase):
    def test_offline_install_into_a_target(self):
        tmp = tempfile.mkdtemp(prefix="strata-pip-")
        try:
            src = os.path.join(tmp, "src")
            shutil.copytree(HERE.parent, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
            target = os.path.join(tmp, "target")
            p = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "--no-index", "--no-build-isolation",
                                "--no-deps", "--quiet", "--target", target, src], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            q = subprocess.run(["/usr/bin/python3", "-c", "import strata_reader, sys; print(strata_reader.__file__)"],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": target}, cwd=tmp)
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertTrue(q.stdout.strip().startswith(target), q.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def readme_blocks():
    """The fenced blocks of README.md's "Using the layers from other tools"."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"^## Using the layers from other tools\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        return []
    return re.findall(r"^```(\w+)\n(.*?)^```", m.group(1), re.S | re.M)


class ReadmeExamples(unittest.TestCase):
    def test_examples_run_as_written(self):
        blocks = readme_blocks()
        langs = [lang for lang, _ in blocks]
        self.assertIn("sh", langs)
        self.assertIn("sql", langs)
        self.assertIn("python", langs)
        tmp = tempfile.mkdtemp(prefix="strata-readme-")
        try:
            strata = test_reader.STRATA_BIN
            os.mkdir(os.path.join(tmp, "data"))
            subprocess.run([strata, "gen", "--rows", "3000", "--out", os.path.join(tmp, "data", "example.db")],
                           check=True, capture_output=True)
            shutil.copy(REPO / "data" / "chinook.db", os.path.join(tmp, "data", "chinook.db"))
            subprocess.run([strata, "run", "--quiet", "--no-report"], check=True, capture_output=True, cwd=tmp)
            env = {**os.environ, "PATH": os.path.dirname(strata) + os.pathsep + os.environ.get("PATH", ""),
                   "PYTHONPATH": str(HERE.parent)}
            for lang, code in blocks:
                if lang == "sh":
                    p = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp, env=env, capture_output=True,
                                       text=True)
                elif lang == "python":
                    p = subprocess.run(["/usr/bin/python3", "-c", code], cwd=tmp, env=env, capture_output=True, text=True)
                elif lang == "sql":
                    if not (REPO / "bench" / "node_modules" / "@duckdb" / "node-api").exists():
                        subprocess.run(["bash", str(REPO / "scripts" / "deps.sh"), "duckdb"], capture_output=True)
                    if not (REPO / "bench" / "node_modules" / "@duckdb" / "node-api").exists():
                        if os.getuid() == 0:
                            self.fail("DuckDB for Node could not be installed (scripts/deps.sh duckdb)")
                        print("README SQL example NOT RUN: DuckDB for Node is not installed", file=sys.stderr)
                        continue
                    sql = os.path.join(tmp, "example.sql")
                    Path(sql).write_text(code)
                    p = subprocess.run(["node", str(REPO / "tests" / "parquet_duckdb_check.cjs"), "--sql", sql],
                                       cwd=tmp, env=env, capture_output=True, text=True)
                else:
                    continue
                self.assertEqual(p.returncode, 0, f"README {lang} example failed:\n{code}\n{p.stdout}{p.stderr}")
                self.assertTrue(p.stdout.strip(), f"README {lang} example printed nothing:\n{code}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
