"""Tests of the independent Python reader (strata_reader) against files the
C writer produced, value for value against the C reader's
`strata export --format jsonl`.

Fixtures: tests/fixtures.c is compiled against build/libstrata.a into a
temporary directory once per run and writes every type x encoding x null
pattern x zstd combination plus edge cases (see its header comment).
The pipeline test builds a whole warehouse with `strata run` when that
command works, and is skipped otherwise. The damage tests flip every byte
and truncate at every length of a small file and require
StrataFormatError each time; targeted tests rewrite single fields with
fixed-up checksums to exercise rules a CRC cannot catch.

Environment: STRATA_BIN = absolute path of the built strata binary,
STRATA_LIB = build/libstrata.a (default: under the repository root, which
is derived from this file's location); CC = the C compiler (default cc).
"""

import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
REPO = HERE.parents[2]

import numpy as np  # noqa: E402

import strata_reader as sr  # noqa: E402
from strata_reader import StrataFormatError, StrataUnsupportedError  # noqa: E402

STRATA_BIN = os.environ.get("STRATA_BIN") or str(REPO / "build" / "strata")
LIBSTRATA = Path(os.environ.get("STRATA_LIB") or REPO / "build" / "libstrata.a")

_tmp = None
FIXTURES = None


def setUpModule():
    global _tmp, FIXTURES
    if not os.access(STRATA_BIN, os.X_OK) or not LIBSTRATA.exists():
        raise unittest.SkipTest(f"build first: {STRATA_BIN} or {LIBSTRATA} is missing (run make)")
    _tmp = tempfile.mkdtemp(prefix="strata-py-")
    exe = os.path.join(_tmp, "fixtures")
    cmd = [os.environ.get("CC", "cc"), "-std=c11", f"-I{REPO / 'include'}", f"-I{REPO / 'formats'}",
           str(HERE / "fixtures.c"), str(LIBSTRATA), "-lzstd", "-lsqlite3", "-lm", "-pthread", "-o", exe]
    subprocess.run(cmd, check=True)
    FIXTURES = os.path.join(_tmp, "fx")
    os.mkdir(FIXTURES)
    subprocess.run([exe, FIXTURES], check=True)


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def fixture_files():
    return sorted(str(p) for p in Path(FIXTURES).glob("*.strata"))


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def c_export(path):
    """Rows of `strata export --format jsonl`, numbers kept as their text."""
    out = subprocess.run([STRATA_BIN, "export", path, "--format", "jsonl"], check=True,
                         stdout=subprocess.PIPE).stdout.decode("utf-8")
    return [json.loads(line, object_pairs_hook=list, parse_int=str, parse_float=str)
            for line in out.splitlines()]


class Compare:
    """Mixin: asserts a Python-read table equals the C reader's export."""

    def assert_matches_c(self, path):
        t = sr.read_file(path)
        rows = c_export(path)
        self.assertEqual(len(rows), t.num_rows, path)
        cols = t.to_pylist()
        names = t.column_names()
        types = [f[1] for f in t.schema]
        for i, row in enumerate(rows):
            self.assertEqual([k for k, _ in row], names, f"{path}: row {i} keys")
            for j, (_, exp) in enumerate(row):
                got = cols[j][i]
                where = f"{path}: row {i} column {names[j]}: python {got!r}, C {exp!r}"
                typ = types[j]
                if typ == "float64":
                    if exp is None:  # NULL, or non-finite (jsonl writes null): checked by the sidecar
                        self.assertTrue(got is None or not math.isfinite(got), where)
                    else:
                        self.assertIsNotNone(got, where)
                        self.assertEqual(f64_bits(got), f64_bits(float(exp)), where)
                    continue
                if exp is None:
                    self.assertIsNone(got, where)
                elif typ in ("int32", "int64"):
                    self.assertEqual(got, int(exp), where)
                    self.assertIs(type(got), int, where)
                elif typ == "bool":
                    self.assertIs(got, exp, where)
                elif typ == "bytes":
                    self.assertEqual(got, bytes.fromhex(exp), where)
                else:
                    self.assertEqual(got, exp, where)
        return t


class TestPrimitives(unittest.TestCase):
    def test_crc32c_check_value(self):
        self.assertEqual(sr.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(sr.crc32c(b""), 0)

    def test_crc32c_against_bitwise(self):
        def naive(d):
            r = 0xFFFFFFFF
            for b in d:
                r ^= b
                for _ in range(8):
                    r = (r >> 1) ^ (0x82F63B78 if r & 1 else 0)
            return r ^ 0xFFFFFFFF

        rng = random.Random(5)
        for n in (1, 7, 8191, 8192, 8193, 70001):
            d = bytes(rng.getrandbits(8) for _ in range(n))
            self.assertEqual(sr.crc32c(d), naive(d), n)
            self.assertEqual(sr.crc32c(d[n // 3:], sr.crc32c(d[:n // 3])), naive(d), n)

    def test_unpack_bits_every_width(self):
        rng = random.Random(11)
        for n in (1, 2, 7, 8, 9, 63, 64, 65, 333):
            for w in range(65):
                vals = [rng.getrandbits(w) if w else 0 for _ in range(n)]
                if w:
                    vals[0] = (1 << w) - 1
                acc = 0
                for i, v in enumerate(vals):
                    acc |= v << (i * w)
                buf = acc.to_bytes((n * w + 7) // 8, "little") + bytes(8)
                self.assertEqual(sr.unpack_bits(buf, n, w).tolist(), vals, (n, w))
        self.assertEqual(sr.unpack_bits(b"", 0, 13).tolist(), [])


def worked_example():
    """The 197-byte file of FORMAT.md's worked example, from its annotation."""
    crc = sr.crc32c
    head = b"STRATA\x01\x00" + struct.pack("<HH", 1, 0)
    head += struct.pack("<I", crc(head))
    bh = struct.pack("<BBHIIII", 1, 2, 3, 3, 1, 20, 20)
    payload = bytes([0x05]) + struct.pack("<q", 0) + bytes([3]) + bytes([0xC5, 0x01]) + bytes(8)
    block = bh + struct.pack("<I", crc(payload, crc(bh))) + payload
    footer = struct.pack("<I", 1) + bytes([3, 1]) + struct.pack("<H", 1) + b"x" + struct.pack("<I", 4) + b"demo"
    footer += struct.pack("<Q", 3) + struct.pack("<H", 4) + b"demo" + struct.pack("<H", 4) + b"tiny"
    footer += struct.pack("<I", 0) + struct.pack("<I", 0) + struct.pack("<Q", 0) + struct.pack("<I", 0)
    footer += struct.pack("<II", 1, 3) + struct.pack("<QIBBBBIQQQ", 16, 44, 1, 2, 1, 0, 1, 24, 5, 7)
    footer += struct.pack("<I", 0)
    tail = struct.pack("<QIHH", len(footer), crc(footer), 1, 0) + b"STRATA\x01\x00"
    return head + block + footer + tail


class TestWorkedExample(unittest.TestCase):
    def test_bytes_and_values(self):
        data = worked_example()
        self.assertEqual(len(data), 197)
        self.assertEqual(data[12:16], bytes.fromhex("80daf1e4"))
        self.assertEqual(data[0x24:0x28], bytes.fromhex("fbd60684"))
        self.assertEqual(data[0xb5:0xb9], bytes.fromhex("62ae30be"))
        t = sr.read_bytes(data)
        self.assertEqual(t.to_pylist(), [[5, None, 7]])
        self.assertEqual(t.schema, [("x", "int64", True, "demo")])
        self.assertEqual((t.meta.layer, t.meta.table, t.num_rows), ("demo", "tiny", 3))
        self.assertEqual(t.columns["x"].dtype, np.int64)
        self.assertEqual(t.validity["x"].tolist(), [True, False, True])


class TestFixtures(Compare, unittest.TestCase):
    def test_every_fixture_matches_c_export(self):
        files = fixture_files()
        self.assertGreater(len(files), 100)
        for path in files:
            with self.subTest(file=os.path.basename(path)):
                self.assert_matches_c(path)

    def test_float_bits_match_generator(self):
        """Every float64 value, NaN payloads, infinities and -0.0 included,
        bit for bit as the generator pushed it."""
        checked = nonfinite = 0
        for path in fixture_files():
            side = path[:-len(".strata")] + ".f64"
            t = sr.read_file(path)
            with open(side) as fh:
                for line in fh:
                    col, row, bits = line.rstrip("\n").split("\t")
                    row = int(row)
                    valid = t.validity[col]
                    if bits == "null":
                        self.assertFalse(valid[row], f"{path} {col}[{row}]")
                        continue
                    self.assertTrue(valid is None or valid[row], f"{path} {col}[{row}]")
                    got = f64_bits(t.columns[col][row])
                    self.assertEqual(got, int(bits, 16), f"{path} {col}[{row}]")
                    checked += 1
                    nonfinite += not math.isfinite(t.columns[col][row])
        self.assertGreater(checked, 1000)
        self.assertGreater(nonfinite, 100)

    def test_coverage_of_types_encodings_nulls(self):
        seen = set()
        zstd = set()
        nulls = set()
        for path in fixture_files():
            t = sr.read_file(path)
            for name, typ, _, _ in t.schema:
                for b in t.blocks[name]:
                    seen.add((typ, b["encoding"]))
                    zstd.add((typ, b["zstd"]))
                    nulls.add((typ, "none" if b["null_count"] == 0 else
                               "all" if b["null_count"] == b["rows"] else "some"))
        ints = ["plain", "for_bitpack", "delta", "rle", "dict", "const"]
        legal = {"bool": ints, "int32": ints, "int64": ints, "float64": ["plain", "dict", "const"],
                 "string": ["plain", "dict", "const"], "bytes": ["plain", "dict", "const"]}
        for typ, encs in legal.items():
            for enc in encs:
                self.assertIn((typ, enc), seen)
            for z in (False, True):
                self.assertIn((typ, z), zstd)
            for p in ("none", "some", "all"):
                self.assertIn((typ, p), nulls)

    def test_dtypes_and_validity(self):
        t = sr.read_file(os.path.join(FIXTURES, "m_e9_n1_z0_r300.strata"))
        want = {"b": np.bool_, "i32": np.int32, "i64": np.int64, "f64": np.float64, "s": object, "y": object}
        for name, dt in want.items():
            self.assertEqual(t.columns[name].dtype, np.dtype(dt), name)
            self.assertEqual(t.validity[name].dtype, np.bool_)
            self.assertEqual(len(t.columns[name]), 300)
        self.assertIsInstance(t.columns["s"][0], str)
        self.assertIsInstance(t.columns["y"][0], bytes)
        self.assertEqual(t.meta.chunk_rows, [256, 44])
        t0 = sr.read_file(os.path.join(FIXTURES, "m_e9_n0_z0_r300.strata"))
        self.assertTrue(all(v is None for v in t0.validity.values()))

    def test_empty_table(self):
        t = sr.read_file(os.path.join(FIXTURES, "empty.strata"))
        self.assertEqual(t.num_rows, 0)
        self.assertEqual(t.meta.chunk_rows, [])
        self.assertEqual(len(t.schema), 6)
        self.assertEqual(t.to_pylist(), [[]] * 6)
        self.assertEqual(t.columns["i32"].dtype, np.int32)

    def test_extremes(self):
        for e in (0, 1, 2, 3, 4, 5, 9):
            t = sr.read_file(os.path.join(FIXTURES, f"x_e{e}.strata"))
            self.assertEqual(int(t.columns["i64"].min()), -(1 << 63))
            self.assertEqual(int(t.columns["i64"].max()), (1 << 63) - 1)
            self.assertEqual(int(t.columns["i32"].min()), -(1 << 31))
            self.assertEqual(int(t.columns["i32"].max()), (1 << 31) - 1)
        for e in range(5):
            t = sr.read_file(os.path.join(FIXTURES, f"w64_e{e}.strata"))
            self.assertEqual(t.to_pylist()[0], [(1 << 63) - 1 if i % 3 else -(1 << 63) for i in range(100)])

    def test_long_strings_and_bytes(self):
        t = sr.read_file(os.path.join(FIXTURES, "s_e9.strata"))
        s = [v for v in t.to_pylist()[0] if v is not None]
        self.assertIn("\U0001F389" * (100 * 1024 // 4), s)
        self.assertIn("caf\u00e9", s)
        y = t.to_pylist()[1]
        self.assertTrue(any(len(v) == 100 * 1024 // 4 and b"\x00" in v and b"\xff" in v for v in y))

    def test_metadata(self):
        t = sr.read_file(os.path.join(FIXTURES, "meta.strata"))
        m = t.meta
        self.assertEqual((m.layer, m.table), ("gold", "meta_\u00e9"))
        self.assertEqual(m.inputs, ["source.customers", "silver.stg_sales"])
        self.assertEqual(m.params, "k=4;seed=7")
        self.assertEqual(m.fingerprint, 0xFEDCBA9876543210)
        self.assertEqual(m.kv, {"owner": "tests", "unicode": "\u20ac", "empty": ""})
        self.assertEqual(m["kv"], m.kv)  # dict access too (bench/kmeans_demo_quality.py uses it)
        self.assertEqual(m["table"], m.table)
        self.assertEqual(t.schema[1], ("name", "string", True, "caf\u00e9 name"))
        self.assertEqual(t.schema[0][2], False)
        self.assertEqual(t.columns["id"].tolist(), [i * 3 - 1000 for i in range(1000)])
        self.assertEqual(m.chunk_rows, [256, 256, 256, 232])

    def test_projection(self):
        path = os.path.join(FIXTURES, "meta.strata")
        full = sr.read_file(path)
        t = sr.read_file(path, columns=["score", "id"])
        self.assertEqual(t.column_names(), ["score", "id"])
        self.assertEqual(t.columns["id"].tolist(), full.columns["id"].tolist())
        self.assertEqual(t.validity["score"].tolist(), full.validity["score"].tolist())
        with self.assertRaises(KeyError):
            sr.read_file(path, columns=["nope"])

    def test_cli(self):
        out = subprocess.run([sys.executable, str(HERE.parent / "strata_reader.py"),
                              os.path.join(FIXTURES, "meta.strata"), "3"],
                             check=True, stdout=subprocess.PIPE).stdout.decode()
        self.assertIn("gold.meta_\u00e9: 1000 rows in 4 chunks", out)
        self.assertIn("id=-994", out)


def build_manifest(layer, table, fingerprint, parts):
    """A manifest per FORMAT.md "Partitioned tables", written here from the
    spec (not by strata): parts = [(name, rows, size, footer_crc, fp)]."""
    def s16(x):
        b = x.encode()
        return struct.pack("<H", len(b)) + b
    body = s16(layer) + s16(table) + struct.pack("<QQI", sum(p[1] for p in parts), fingerprint, len(parts))
    for name, rows, size, fcrc, fp in parts:
        body += s16(name) + struct.pack("<QQIQ", rows, size, fcrc, fp)
    head = sr.MANIFEST_MAGIC + struct.pack("<HHI", 1, 0, len(body))
    return head + body + struct.pack("<I", sr.crc32c(head + body))


class TestPartitioned(Compare, unittest.TestCase):
    """A table of three parts (copies of one fixture file) read by both
    readers as one table, and refused by both when a part is swapped or the
    manifest damaged."""

    def make(self, src, n=3):
        d = tempfile.mkdtemp(dir=_tmp)
        os.mkdir(os.path.join(d, "t.parts"))
        raw = Path(src).read_bytes()
        meta = sr.read_file(src).meta
        rows = sr.read_file(src).num_rows
        fcrc = struct.unpack_from("<I", raw, len(raw) - 16)[0]
        parts = []
        for k in range(n):
            name = f"part-{k:05d}.strata"
            shutil.copyfile(src, os.path.join(d, "t.parts", name))
            parts.append((name, rows, len(raw), fcrc, meta.fingerprint))
        m = os.path.join(d, "t.strata")
        Path(m).write_bytes(build_manifest(meta.layer, meta.table, 0x1234, parts))
        return m, rows

    def sources(self):
        files = [f for f in fixture_files() if sr.read_file(f).num_rows > 0]
        self.assertGreater(len(files), 3)
        return files[:: max(1, len(files) // 6)]

    def test_parts_read_as_one_table_by_both_readers(self):
        for src in self.sources():
            with self.subTest(file=os.path.basename(src)):
                m, rows = self.make(src)
                t = self.assert_matches_c(m)
                self.assertEqual(t.num_rows, 3 * rows)
                self.assertEqual(t.meta.fingerprint, 0x1234)
                self.assertEqual(len(t.meta.parts), 3)
                one = sr.read_file(src).to_pylist()
                self.assertEqual(repr(t.to_pylist()), repr([c * 3 for c in one]))  # NaN == NaN by repr
                chunks = list(sr.iter_chunks(m))
                self.assertEqual(sum(c.num_rows for c in chunks), 3 * rows)

    def test_a_replaced_part_or_damaged_manifest_is_refused_by_both(self):
        src, other = self.sources()[:2]
        m, _ = self.make(src)
        part1 = os.path.join(os.path.dirname(m), "t.parts", "part-00001.strata")
        keep = Path(part1).read_bytes()
        shutil.copyfile(other, part1)
        with self.assertRaises(StrataFormatError):
            sr.read_file(m)
        self.assertEqual(subprocess.run([STRATA_BIN, "export", m], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL).returncode, 6)
        os.remove(part1)
        with self.assertRaisesRegex(StrataFormatError, "missing"):
            sr.read_file(m)
        Path(part1).write_bytes(keep)
        sr.read_file(m)
        good = Path(m).read_bytes()
        for i in range(len(good)):
            bad = bytearray(good)
            bad[i] ^= 0x01
            Path(m).write_bytes(bytes(bad))
            with self.assertRaises(StrataFormatError, msg=f"byte {i}"):
                sr.read_file(m)
        for n in range(len(good)):
            with self.assertRaises(StrataFormatError, msg=f"cut at {n}"):
                sr.parse_manifest(good[:n])


class TestPipeline(Compare, unittest.TestCase):
    def test_every_warehouse_file_matches_c_export(self):
        tmp = tempfile.mkdtemp(prefix="strata-py-wh-")
        try:
            tx = os.path.join(tmp, "tx.db")
            wh = os.path.join(tmp, "wh")
            gen = subprocess.run([STRATA_BIN, "gen", "--out", tx, "--rows", "5000", "--seed", "3"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if gen.returncode != 0:
                self.skipTest(f"strata gen failed ({gen.stderr.decode().strip()}): pipeline not available")
            run = subprocess.run([STRATA_BIN, "run", "--customers", str(REPO / "data" / "chinook.db"),
                                  "--transactions", tx, "--warehouse", wh, "--quiet", "--no-report"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if run.returncode != 0:
                self.skipTest(f"strata run failed (exit {run.returncode}: "
                              f"{run.stderr.decode().strip()[:200]}): pipeline not merged yet")
            files = sorted(str(p) for p in Path(wh).rglob("*.strata"))
            self.assertTrue(files, "strata run wrote no .strata file")
            for path in files:
                with self.subTest(file=os.path.relpath(path, wh)):
                    self.assert_matches_c(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- damage

def fix_header(b):
    b[12:16] = struct.pack("<I", sr.crc32c(bytes(b[:12])))


def footer_range(b):
    flen = struct.unpack_from("<Q", b, len(b) - 24)[0]
    return len(b) - 24 - flen, len(b) - 24


def fix_footer(b):
    s, e = footer_range(b)
    struct.pack_into("<I", b, len(b) - 16, sr.crc32c(bytes(b[s:e])))


def fix_block(b, off, size):
    struct.pack_into("<I", b, off + 20, sr.crc32c(bytes(b[off + 24:off + size]), sr.crc32c(bytes(b[off:off + 20]))))


def first_entry(b):
    """Footer offset of the first block entry of the worked example."""
    s, _ = footer_range(b)
    return s + 0x7d - 0x3c


class TestDamage(unittest.TestCase):
    def small(self):
        with open(os.path.join(FIXTURES, "small.strata"), "rb") as fh:
            return fh.read()

    def test_every_byte_flip_is_detected(self):
        data = self.small()
        good = sr.read_bytes(data).to_pylist()
        self.assertEqual(len(good[0]), 20)
        rng = random.Random(1)
        for i in range(len(data)):
            for mask in (0xFF, 1 << rng.randrange(8)):
                b = bytearray(data)
                b[i] ^= mask
                with self.assertRaises(StrataFormatError, msg=f"byte {i} ^ {mask:#x} not detected"):
                    sr.read_bytes(bytes(b))

    def test_random_multibyte_damage_in_many_files(self):
        rng = random.Random(7)
        files = [p for p in fixture_files() if os.path.getsize(p) < 6000]
        self.assertGreater(len(files), 20)
        for path in files:
            with open(path, "rb") as fh:
                data = fh.read()
            sr.read_bytes(data)
            for _ in range(12):
                b = bytearray(data)
                for _ in range(rng.randint(1, 4)):
                    b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
                if b == data:
                    continue
                with self.assertRaises(StrataFormatError, msg=f"{path}: damage not detected"):
                    sr.read_bytes(bytes(b))

    def test_damage_behind_recomputed_checksums(self):
        """Random edits inside one block (or the footer) of many files, with
        that block's (or the footer's) CRC32C recomputed so the decoder
        itself meets the damage: the read must either succeed or raise
        StrataFormatError, never another exception."""
        rng = random.Random(3)
        files = [p for p in fixture_files() if os.path.getsize(p) < 20000]
        cache = {}
        rejected = 0
        for _ in range(1500):
            path = rng.choice(files)
            if path not in cache:
                with open(path, "rb") as fh:
                    data = fh.read()
                entries = sr._parse(data, path)[4]
                cache[path] = (data, [e for row in entries for e in row])
            data, ents = cache[path]
            b = bytearray(data)
            blk = None if rng.random() < 0.3 or not ents else rng.choice(ents)
            lo, hi = footer_range(b) if blk is None else (blk.offset, blk.offset + blk.size)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(lo, hi)
                b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
            if blk is None:
                fix_footer(b)
            else:
                fix_block(b, blk.offset, blk.size)
            try:
                sr.read_bytes(bytes(b))
            except StrataFormatError:
                rejected += 1
        self.assertGreater(rejected, 1000)

    def test_every_truncation_is_detected(self):
        data = self.small()
        for n in range(len(data)):
            with self.assertRaises(StrataFormatError, msg=f"truncation to {n} bytes not detected"):
                sr.read_bytes(data[:n])
        with self.assertRaises(StrataFormatError):
            sr.read_bytes(data + b"\x00")
        with self.assertRaises(StrataFormatError):
            sr.read_bytes(b"\x00" + data)

    def test_newer_major_is_unsupported(self):
        b = bytearray(worked_example())
        struct.pack_into("<H", b, 8, 2)
        struct.pack_into("<H", b, len(b) - 12, 2)
        fix_header(b)
        with self.assertRaisesRegex(StrataUnsupportedError, "newer"):
            sr.read_bytes(bytes(b))

    def test_version_mismatch(self):
        b = bytearray(worked_example())
        struct.pack_into("<H", b, len(b) - 10, 1)  # tail minor 1, header minor 0
        with self.assertRaisesRegex(StrataFormatError, "version"):
            sr.read_bytes(bytes(b))

    def test_newer_minor_with_unknown_section_is_read(self):
        data = worked_example()
        s, e = footer_range(data)
        footer = data[s:e - 4] + struct.pack("<I", 1) + struct.pack("<II", 77, 3) + b"abc"
        head = bytearray(data[:16])
        struct.pack_into("<H", head, 10, 1)
        fix_header(head)
        tail = struct.pack("<QIHH", len(footer), sr.crc32c(footer), 1, 1) + sr.MAGIC
        t = sr.read_bytes(bytes(head) + data[16:s] + footer + tail)
        self.assertEqual(t.to_pylist(), [[5, None, 7]])
        self.assertEqual(t.meta.version, (1, 1))
        self.assertEqual(t.version, (1, 1))

    def test_unknown_encoding_fails_only_when_decoded(self):
        # two columns: block 0 gets encoding 9 (a "newer minor" encoding)
        path = os.path.join(FIXTURES, "meta.strata")
        with open(path, "rb") as fh:
            b = bytearray(fh.read())
        t = sr.read_bytes(bytes(b))
        s, _ = footer_range(b)
        # locate the first block entry: offset 16 encoded as u64 right after the first chunk's row count
        ent = bytes(b).find(struct.pack("<IQ", t.meta.chunk_rows[0], 16), s) + 4
        size = struct.unpack_from("<I", b, ent + 8)[0]
        b[ent + 12] = 9
        b[16] = 9
        fix_block(b, 16, size)
        fix_footer(b)
        with self.assertRaisesRegex(StrataFormatError, "unknown encoding 9"):
            sr.read_bytes(bytes(b))
        t2 = sr.read_bytes(bytes(b), columns=["name", "score"])
        self.assertEqual(t2.to_pylist()[0], t.to_pylist()[1])
        # a projection still checksums the blocks it does not decode
        b[17] ^= 0x40
        with self.assertRaisesRegex(StrataFormatError, "chunk 0 column 'id': block checksum"):
            sr.read_bytes(bytes(b), columns=["name"])
        self.assertEqual(sr.read_bytes(bytes(b), columns=["name"], verify_all=False).num_rows, 1000)

    def test_null_slot_values_are_ignored(self):
        # FORMAT.md: writers put 0 in a NULL slot, readers ignore it. Slot 1 of the example
        # becomes 1 (bits 3..5 of c5 -> cd); a NULL slot of 9 in a bool column is ignored too.
        t = sr.read_bytes(self.rewrite_example(lambda b: b.__setitem__(0x32, 0xcd)))
        self.assertEqual(t.to_pylist(), [[5, None, 7]])
        self.assertEqual(t.columns["x"].tolist(), [5, 0, 7])

        data = bytearray(worked_example())
        data[0x12] = 1  # block type bool
        data[0x40] = 1  # schema type bool
        data[0x32:0x34] = bytes([0b01001001, 0])  # 1, 1 (NULL slot), 1 with w = 3
        struct.pack_into("<QQQ", data, first_entry(data) + 20, 3, 1, 1)
        fix_block(data, 16, 44)
        fix_footer(data)
        self.assertEqual(sr.read_bytes(bytes(data)).to_pylist(), [[True, None, True]])
        data[0x32] = 0b01111001  # NULL slot holds 7: not a bool, but ignored
        fix_block(data, 16, 44)
        t = sr.read_bytes(bytes(data))
        self.assertEqual(t.to_pylist(), [[True, None, True]])
        self.assertEqual(t.columns["x"].tolist(), [True, False, True])
        data[0x32] = 0b01001111  # present value 7 in a bool column: an error
        fix_block(data, 16, 44)
        with self.assertRaisesRegex(StrataFormatError, "not 0/1"):
            sr.read_bytes(bytes(data))

    def test_footer_trailing_byte_and_gap(self):
        data = worked_example()
        s, e = footer_range(data)
        footer = data[s:e] + b"\x00"
        tail = struct.pack("<QIHH", len(footer), sr.crc32c(footer), 1, 0) + sr.MAGIC
        with self.assertRaisesRegex(StrataFormatError, "1 trailing bytes"):
            sr.read_bytes(data[:s] + footer + tail)
        # a byte between the last block and the footer: the blocks no longer tile the file
        with self.assertRaisesRegex(StrataFormatError, "gap"):
            sr.read_bytes(data[:s] + b"\x00" + data[s:])

    def rewrite_example(self, mutate):
        """Worked example with mutate(block payload bytearray) applied, CRCs fixed."""
        b = bytearray(worked_example())
        mutate(b)
        fix_block(b, 16, 44)
        fix_footer(b)
        fix_header(b)
        return bytes(b)

    def test_rules_behind_valid_checksums(self):
        cases = {
            "slack bytes are not zero": lambda b: b.__setitem__(0x3b, 1),
            "bits set past its last value": lambda b: b.__setitem__(0x33, 0x05),
            "bit width 65": lambda b: b.__setitem__(0x31, 65),
            "validity bitmap has 2 NULLs": lambda b: b.__setitem__(0x28, 0x01),
            "validity bits set past the last row": lambda b: b.__setitem__(0x28, 0x0d),
            "zone map min/max": lambda b: b.__setitem__(first_entry(b) + 28, 4),
            "reserved byte": lambda b: b.__setitem__(first_entry(b) + 15, 1),
            "block type id": lambda b: b.__setitem__(0x12, 2),
            "encoding rle is not|unknown block flags|disagrees": lambda b: b.__setitem__(first_entry(b) + 13, 6),
            "total rows": lambda b: b.__setitem__(0x4d, 4),
            "differs from the footer": lambda b: b.__setitem__(0x18, 0),
            "nullable flag": lambda b: b.__setitem__(0x41, 2),
            "unknown type id": lambda b: b.__setitem__(0x40, 7),
            "70000 rows, not 1..65536": lambda b: (struct.pack_into("<Q", b, 0x4d, 70000),
                                                   struct.pack_into("<I", b, 0x79, 70000)),
            "chunk 0 has 0 rows": lambda b: b.__setitem__(0x79, 0),
        }
        for msg, mutate in cases.items():
            with self.subTest(rule=msg):
                with self.assertRaisesRegex(StrataFormatError, msg):
                    sr.read_bytes(self.rewrite_example(mutate))


if __name__ == "__main__":
    unittest.main()
