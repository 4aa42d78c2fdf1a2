"""Tests of the Python reader against files written by the C writer.

Run by `make test` (STRATA_BIN and STRATA_LIB point at the built binary and library):
    /usr/bin/python3 -m unittest discover -s formats/python/tests -t formats/python -v
Every file is compared value for value with `strata export --format jsonl` (the C reader).
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "formats", "python"))

import strata_reader  # noqa: E402

BIN = os.environ.get("STRATA_BIN", os.path.join(REPO, "build", "strata"))
LIB = os.environ.get("STRATA_LIB", os.path.join(REPO, "build", "libstrata.a"))


def c_export(path):
    """The C reader's view of a file: list of row dicts."""
    out = subprocess.run([BIN, "export", path, "--format", "jsonl"], check=True, capture_output=True).stdout
    # keep integer literals as text: "-0" is a float64 -0.0 but would parse as int 0
    return [json.loads(line, parse_int=lambda text: ("int", text)) for line in out.decode("utf-8").splitlines() if line]


def unwrap(value, typ):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "int":
        return float(value[1]) if typ == "float64" else int(value[1])
    return value


def assert_same(test, path, table):
    rows = c_export(path)
    test.assertEqual(len(rows), table.num_rows, path)
    cols = table.to_pylist()
    for j, (name, typ, _, _) in enumerate(table.schema):
        mine = cols[j]
        for i, row in enumerate(rows):
            want, got = unwrap(row[name], typ), mine[i]
            if typ == "float64" and got is not None and not math.isfinite(got):
                test.assertIsNone(want, "%s %s[%d]: non-finite floats export as null" % (path, name, i))
            elif typ == "bytes" and got is not None:
                test.assertEqual(want, got.hex(), "%s %s[%d]" % (path, name, i))
            elif typ == "float64" and got is not None:
                test.assertEqual(want, got, "%s %s[%d]" % (path, name, i))
                test.assertEqual(math.copysign(1, want), math.copysign(1, got), "%s %s[%d] sign" % (path, name, i))
            else:
                test.assertEqual(want, got, "%s %s[%d]" % (path, name, i))


class FixtureFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="strata_py_")
        exe = os.path.join(cls.tmp, "fixtures")
        subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "include"),
                        "-I" + os.path.join(REPO, "formats"), os.path.join(HERE, "fixtures.c"), LIB,
                        "-lzstd", "-lsqlite3", "-lm", "-pthread", "-o", exe], check=True)
        cls.dir = os.path.join(cls.tmp, "files")
        os.mkdir(cls.dir)
        subprocess.run([exe, cls.dir], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_type_encoding_and_null_pattern_matches_the_c_reader(self):
        files = sorted(f for f in os.listdir(self.dir) if f.endswith(".strata"))
        self.assertGreater(len(files), 200)
        for f in files:
            path = os.path.join(self.dir, f)
            t = strata_reader.read_file(path)
            self.assertEqual(t.meta["table"], "fixture")
            assert_same(self, path, t)

    def test_encodings_are_really_exercised(self):
        seen = set()
        for f in os.listdir(self.dir):
            t = strata_reader.read_file(os.path.join(self.dir, f))
            for blocks in t.chunks:
                for b in blocks:
                    seen.add((b["encoding"], bool(b["flags"] & 1)))
        self.assertTrue({0, 1, 2, 3, 4, 5} <= {e for e, _ in seen}, seen)
        self.assertIn(True, {z for _, z in seen}, "some block uses the zstd stage")

    def test_projection_and_metadata(self):
        t = strata_reader.read_file(os.path.join(self.dir, "bigstrings.strata"), columns=["s"])
        self.assertEqual([s[0] for s in t.schema], ["s"])
        self.assertEqual(len(t.columns["s"][4]), 99996)
        self.assertEqual(t.meta["params"], "p=1")
        self.assertEqual(t.meta["fingerprint"], 99)

    def test_every_byte_flip_and_truncation_is_an_error(self):
        path = os.path.join(self.dir, "e0_int64_p3_n1.strata")
        data = open(path, "rb").read()
        good = strata_reader.read_bytes(data).to_pylist()
        self.assertTrue(good)
        for i in range(0, len(data)):
            damaged = bytearray(data)
            damaged[i] ^= 0x40
            with self.assertRaises(strata_reader.StrataFormatError, msg="flip at %d" % i):
                strata_reader.read_bytes(bytes(damaged))
        for n in range(0, len(data), 7):
            with self.assertRaises(strata_reader.StrataFormatError, msg="truncated to %d" % n):
                strata_reader.read_bytes(data[:n])

    def test_crc32c_known_answer(self):
        self.assertEqual(strata_reader.crc32c(b"123456789"), 0xE3069283)


class WarehouseFiles(unittest.TestCase):
    """Every table `strata run` writes, read by both readers."""

    def test_every_table_of_a_run_matches_the_c_reader(self):
        tmp = tempfile.mkdtemp(prefix="strata_py_wh_")
        try:
            tx = os.path.join(tmp, "tx.db")
            wh = os.path.join(tmp, "wh")
            subprocess.run([BIN, "gen", "--out", tx, "--rows", "20000", "--seed", "3"], check=True, capture_output=True)
            r = subprocess.run([BIN, "run", "--customers", os.path.join(REPO, "data", "chinook.db"), "--transactions", tx,
                                "--warehouse", wh, "--quiet", "--no-report"], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            n = 0
            for layer in ("bronze", "silver", "gold", "platinum"):
                for f in sorted(os.listdir(os.path.join(wh, layer))):
                    path = os.path.join(wh, layer, f)
                    assert_same(self, path, strata_reader.read_file(path))
                    n += 1
            self.assertEqual(n, 16)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
