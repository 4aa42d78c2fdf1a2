"""strata_reader: a reader for strata layer files (.strata), written from formats/FORMAT.md.

It depends only on the Python standard library, numpy and zstandard (Debian packages
python3-numpy and python3-zstandard). Every checksum and every structural rule of the
spec is checked; any damage raises StrataFormatError, never another exception and never
silently different values.

    import strata_reader
    t = strata_reader.read_file("warehouse/gold/int_customer_analytics.strata")
    t.num_rows, t.schema, t.meta["table"]
    t.columns["total_sold_quantity"]        # numpy int64 array
    t.validity["median_sold_order_size"]    # numpy bool array (False = NULL) or None
    t.to_pylist()                            # list of columns, None for NULL

Run as a script to print a file's schema and first rows:  python3 strata_reader.py FILE
"""

import struct
import sys

import numpy as np
import zstandard

MAGIC = b"STRATA\x01\x00"
READ_MAJOR = 1
HEADER = 16
TAIL = 24
BLOCK_HEADER = 24
SLACK = 8
MAX_RAW = 512 << 20

TYPES = {1: "bool", 2: "int32", 3: "int64", 4: "float64", 5: "string", 6: "bytes"}
DTYPES = {1: np.bool_, 2: np.int32, 3: np.int64, 4: np.float64}
WIDTH = {1: 1, 2: 4, 3: 8, 4: 8}
ENCODINGS = {0: "plain", 1: "for_bitpack", 2: "delta", 3: "rle", 4: "dict", 5: "const"}


class StrataFormatError(Exception):
    """The bytes are not a valid strata file (damaged, truncated or not strata at all)."""


# ---- CRC32C (Castagnoli, reflected 0x82F63B78), table-driven -----------------------------

def _crc_table():
    table = np.zeros((8, 256), dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table[0, i] = c
    for i in range(256):
        for t in range(1, 8):
            prev = int(table[t - 1, i])
            table[t, i] = (prev >> 8) ^ int(table[0, prev & 0xFF])
    return [[int(v) for v in row] for row in table]


_T = _crc_table()


def crc32c(data, crc=0):
    """CRC32C of bytes, chained through crc (0 to start)."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    crc ^= 0xFFFFFFFF
    mv = memoryview(data)
    n = len(mv)
    i = 0
    end8 = n - n % 8
    # slicing-by-8 over 8-byte words
    while i < end8:
        a = crc ^ (mv[i] | mv[i + 1] << 8 | mv[i + 2] << 16 | mv[i + 3] << 24)
        crc = (t7[a & 0xFF] ^ t6[(a >> 8) & 0xFF] ^ t5[(a >> 16) & 0xFF] ^ t4[a >> 24] ^
               t3[mv[i + 4]] ^ t2[mv[i + 5]] ^ t1[mv[i + 6]] ^ t0[mv[i + 7]])
        i += 8
    while i < n:
        crc = (crc >> 8) ^ t0[(crc ^ mv[i]) & 0xFF]
        i += 1
    return crc ^ 0xFFFFFFFF


# ---- a bounds-checked cursor ---------------------------------------------------------------

class _Cursor:
    def __init__(self, buf, what):
        self.buf = buf
        self.at = 0
        self.what = what

    def take(self, n):
        if n < 0 or n > len(self.buf) - self.at:
            raise StrataFormatError("%s truncated" % self.what)
        b = self.buf[self.at:self.at + n]
        self.at += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def i64(self):
        return struct.unpack("<q", self.take(8))[0]

    def str16(self):
        return self._utf8(self.take(self.u16()))

    def str32(self):
        return self._utf8(self.take(self.u32()))

    def _utf8(self, b):
        try:
            return bytes(b).decode("utf-8")
        except UnicodeDecodeError:
            raise StrataFormatError("%s: a name is not UTF-8" % self.what) from None

    def done(self):
        if self.at != len(self.buf):
            raise StrataFormatError("%s: trailing bytes" % self.what)


# ---- bit packing ------------------------------------------------------------------------------

def _packed_len(n, w):
    return (n * w + 7) // 8 + SLACK


def unpack(buf, n, w):
    """n unsigned values of w bits (0..64) from the little-endian bit stream buf -> uint64 array."""
    if w == 0 or n == 0:
        return np.zeros(n, dtype=np.uint64)
    data = np.frombuffer(bytes(buf), dtype=np.uint8)
    bits = np.unpackbits(data, bitorder="little")[: n * w].reshape(n, w).astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(w, dtype=np.uint64))
    # sum of bit * 2^k with uint64 wrap-free arithmetic (each term distinct bit)
    return (bits * weights).sum(axis=1, dtype=np.uint64)


def _take_packed(cur, n, w):
    if w > 64:
        raise StrataFormatError("bit width over 64")
    return unpack(cur.take(_packed_len(n, w)), n, w)


# ---- decoding values ---------------------------------------------------------------------------

def _to_type(t, u64):
    """Widened 64-bit values -> the column type, refusing values outside it."""
    s = u64.view(np.int64)
    if t == 1:
        if np.any(u64 > 1):
            raise StrataFormatError("bool value other than 0/1")
        return u64.astype(np.bool_)
    if t == 2:
        if np.any((s < -(2 ** 31)) | (s > 2 ** 31 - 1)):
            raise StrataFormatError("int32 value out of range")
        return s.astype(np.int32)
    if t == 3:
        return s.copy()
    return u64.view(np.float64).copy()


def _decode_fixed(t, enc, cur, n):
    w8 = np.uint64
    if enc == 0:
        raw = cur.take(n * WIDTH[t])
        arr = np.frombuffer(bytes(raw), dtype=np.dtype(DTYPES[t]).newbyteorder("<") if t != 1 else np.uint8)
        if t == 1:
            if np.any(arr > 1):
                raise StrataFormatError("bool value other than 0/1")
            return arr.astype(np.bool_)
        return arr.astype(DTYPES[t])
    if enc == 5:
        v = np.full(n, cur.u64(), dtype=np.uint64)
        return _to_type(t, v)
    if t == 4 and enc != 4:
        raise StrataFormatError("encoding %d is not valid for float64" % enc)
    with np.errstate(over="ignore"):
        if enc == 1:
            base = w8(cur.u64())
            w = cur.u8()
            v = _take_packed(cur, n, w) + base
        elif enc == 2:
            if n == 0:
                raise StrataFormatError("delta encoding of zero rows")
            first = w8(cur.u64())
            base = w8(cur.u64())
            w = cur.u8()
            d = _take_packed(cur, n - 1, w) + base
            v = np.empty(n, dtype=np.uint64)
            v[0] = first
            if n > 1:
                v[1:] = first + np.cumsum(d, dtype=np.uint64)
        elif enc == 3:
            r = cur.u32()
            if r == 0 and n > 0 or r > n:
                raise StrataFormatError("bad run count")
            base = w8(cur.u64())
            w = cur.u8()
            vals = _take_packed(cur, r, w) + base
            w2 = cur.u8()
            lens = _take_packed(cur, r, w2) + w8(1)
            if r and (np.any(lens == 0) or int(lens.sum(dtype=np.uint64)) != n):
                raise StrataFormatError("run lengths do not add up to the row count")
            v = np.repeat(vals, lens.astype(np.int64)) if r else np.zeros(0, dtype=np.uint64)
        elif enc == 4:
            dn = cur.u32()
            if dn == 0 or dn > 4096:
                raise StrataFormatError("bad dictionary size")
            if t == 4:
                dic = np.frombuffer(bytes(cur.take(dn * 8)), dtype="<u8").astype(np.uint64)
            else:
                base = w8(cur.u64())
                w = cur.u8()
                dic = _take_packed(cur, dn, w) + base
            wc = cur.u8()
            codes = _take_packed(cur, n, wc)
            if np.any(codes >= dn):
                raise StrataFormatError("dictionary code out of range")
            v = dic[codes.astype(np.int64)]
        else:
            raise StrataFormatError("unknown encoding %d" % enc)
    return _to_type(t, v)


def _decode_var(t, enc, cur, n):
    if enc == 0:
        base = cur.u64()
        w = cur.u8()
        with np.errstate(over="ignore"):
            lens = _take_packed(cur, n, w) + np.uint64(base)
        total = int(lens.sum(dtype=np.uint64)) if n else 0
        if np.any(lens > len(cur.buf)) or total > len(cur.buf):
            raise StrataFormatError("string lengths exceed the block")
        data = bytes(cur.take(total))
        out, at = [], 0
        for ln in lens.tolist():
            out.append(data[at:at + ln])
            at += ln
        vals = out
    elif enc == 4:
        dn = cur.u32()
        if dn == 0 or dn > 4096:
            raise StrataFormatError("bad dictionary size")
        base = cur.u64()
        w = cur.u8()
        with np.errstate(over="ignore"):
            dl = _take_packed(cur, dn, w) + np.uint64(base)
        if np.any(dl > len(cur.buf)):
            raise StrataFormatError("dictionary lengths exceed the block")
        data = bytes(cur.take(int(dl.sum(dtype=np.uint64))))
        dic, at = [], 0
        for ln in dl.tolist():
            dic.append(data[at:at + ln])
            at += ln
        wc = cur.u8()
        codes = _take_packed(cur, n, wc)
        if np.any(codes >= dn):
            raise StrataFormatError("dictionary code out of range")
        vals = [dic[c] for c in codes.tolist()]
    elif enc == 5:
        ln = cur.u32()
        one = bytes(cur.take(ln))
        vals = [one] * n
    else:
        raise StrataFormatError("unknown encoding %d for strings" % enc)
    if t == 5:
        try:
            vals = [v.decode("utf-8") for v in vals]
        except UnicodeDecodeError:
            raise StrataFormatError("string column holds invalid UTF-8") from None
    return np.array(vals, dtype=object) if n else np.zeros(0, dtype=object)


# ---- the file ----------------------------------------------------------------------------------

class Table:
    """A decoded strata table: schema, metadata, columns (numpy arrays) and validity."""

    def __init__(self):
        self.schema = []      # (name, type name, nullable, description)
        self.num_rows = 0
        self.meta = {}
        self.columns = {}
        self.validity = {}
        self.version = (0, 0)
        self.chunks = []      # per chunk: list of block dicts (encoding, flags, zone map, ...)

    def to_pylist(self):
        """Columns as Python lists with None for NULL, in schema order."""
        out = []
        for name, _, _, _ in self.schema:
            vals = self.columns[name].tolist()
            valid = self.validity[name]
            if valid is not None:
                vals = [v if ok else None for v, ok in zip(vals, valid.tolist())]
            out.append(vals)
        return out


def _parse_footer(buf, size):
    if size < HEADER + TAIL:
        raise StrataFormatError("too short")
    tail = buf[size - TAIL:]
    if bytes(tail[16:24]) != MAGIC:
        raise StrataFormatError("bad magic at the end")
    if bytes(buf[:8]) != MAGIC:
        raise StrataFormatError("bad magic at the start")
    if struct.unpack("<I", buf[12:16])[0] != crc32c(buf[:12]):
        raise StrataFormatError("header checksum mismatch")
    major, minor = struct.unpack("<HH", tail[12:16])
    if struct.unpack("<HH", buf[8:12]) != (major, minor):
        raise StrataFormatError("header and tail disagree on the version")
    if major > READ_MAJOR:
        raise StrataFormatError("format version %d.%d is newer than this reader (%d.x)" % (major, minor, READ_MAJOR))
    if major < 1:
        raise StrataFormatError("bad version")
    flen = struct.unpack("<Q", tail[:8])[0]
    if flen > size - HEADER - TAIL:
        raise StrataFormatError("footer length exceeds the file")
    fstart = size - TAIL - flen
    footer = buf[fstart:size - TAIL]
    if struct.unpack("<I", tail[8:12])[0] != crc32c(footer):
        raise StrataFormatError("footer checksum mismatch")
    t = Table()
    t.version = (major, minor)
    c = _Cursor(footer, "footer")
    nf = c.u32()
    if nf == 0 or nf > 65535:
        raise StrataFormatError("bad column count")
    for _ in range(nf):
        typ = c.u8()
        nullable = c.u8()
        if typ not in TYPES or nullable > 1:
            raise StrataFormatError("bad column type")
        name = c.str16()
        desc = c.str32()
        t.schema.append((name, typ, bool(nullable), desc))
    t.num_rows = c.u64()
    t.meta["layer"] = c.str16()
    t.meta["table"] = c.str16()
    t.meta["inputs"] = [c.str16() for _ in range(c.u32())]
    t.meta["params"] = c.str32()
    t.meta["fingerprint"] = c.u64()
    kv = {}
    for _ in range(c.u32()):
        k = c.str16()
        kv[k] = c.str32()
    t.meta["kv"] = kv
    nc = c.u32()
    if nc * (4 + nf * 40) > len(footer) - c.at:
        raise StrataFormatError("bad chunk directory")
    expect, rows = HEADER, 0
    for _ in range(nc):
        n = c.u32()
        if n == 0 or n > 65536:
            raise StrataFormatError("chunk row count outside 1..65536")
        rows += n
        blocks = []
        for j in range(nf):
            b = {"rows": n, "offset": c.u64(), "size": c.u32(), "encoding": c.u8(), "flags": c.u8(),
                 "has_minmax": c.u8()}
            c.u8()
            b["null_count"] = c.u32()
            b["raw_bytes"] = c.u64()
            b["min"] = c.u64()
            b["max"] = c.u64()
            if (b["offset"] != expect or b["size"] < BLOCK_HEADER or b["encoding"] > 5 or b["flags"] > 3 or
                    b["has_minmax"] > 1 or b["null_count"] > n):
                raise StrataFormatError("bad block entry")
            expect += b["size"]
            blocks.append(b)
        t.chunks.append(blocks)
    for _ in range(c.u32()):
        c.u32()
        c.take(c.u32())  # optional section: skipped (none are defined in 1.0)
    c.done()
    if expect != fstart:
        raise StrataFormatError("blocks do not tile the file")
    if rows != t.num_rows:
        raise StrataFormatError("chunk row counts do not add up")
    return t


_dctx = zstandard.ZstdDecompressor()


def _read_block(buf, b, typ, name, nullable):
    h = buf[b["offset"]:b["offset"] + BLOCK_HEADER]
    enc, flags, htype, hrows, hnulls, stored, raw, crc = struct.unpack("<BBHIIIII", h)
    n = b["rows"]
    if stored != b["size"] - BLOCK_HEADER:
        raise StrataFormatError("column %s: block size disagrees with the footer" % name)
    payload = buf[b["offset"] + BLOCK_HEADER:b["offset"] + b["size"]]
    if crc32c(payload, crc32c(h[:20])) != crc:
        raise StrataFormatError("column %s: block checksum mismatch" % name)
    if (enc != b["encoding"] or flags != b["flags"] or htype != typ or hrows != n or hnulls != b["null_count"]):
        raise StrataFormatError("column %s: block header disagrees with the footer" % name)
    if flags & 1:
        if raw > MAX_RAW:
            raise StrataFormatError("column %s: decoded size over the limit" % name)
        try:
            params = zstandard.get_frame_parameters(bytes(payload))
            if params.content_size != raw:
                raise StrataFormatError("column %s: zstd frame size disagrees" % name)
            payload = _dctx.decompress(bytes(payload), max_output_size=raw)
        except zstandard.ZstdError:
            raise StrataFormatError("column %s: zstd frame does not decode" % name) from None
        if len(payload) != raw:
            raise StrataFormatError("column %s: zstd frame does not decode" % name)
    elif raw != stored:
        raise StrataFormatError("column %s: sizes disagree" % name)
    vbytes = (n + 7) // 8 if flags & 2 else 0
    if vbytes > len(payload):
        raise StrataFormatError("column %s: validity bitmap truncated" % name)
    valid = None
    if vbytes:
        vb = np.frombuffer(bytes(payload[:vbytes]), dtype=np.uint8)
        allbits = np.unpackbits(vb, bitorder="little")
        if np.any(allbits[n:]):
            raise StrataFormatError("column %s: validity padding bits set" % name)
        valid = allbits[:n].astype(np.bool_)
        nulls = n - int(valid.sum())
        if nulls != b["null_count"] or nulls == 0:
            raise StrataFormatError("column %s: null count disagrees with the bitmap" % name)
    elif b["null_count"]:
        raise StrataFormatError("column %s: NULLs without a validity bitmap" % name)
    cur = _Cursor(memoryview(payload)[vbytes:], "column %s values" % name)
    if b["null_count"] == n:
        if enc != 5 or len(cur.buf) != 0:
            raise StrataFormatError("column %s: all-NULL block with values" % name)
        values = np.zeros(n, dtype=object) if typ >= 5 else np.zeros(n, dtype=DTYPES[typ])
        if typ >= 5:
            values[:] = "" if typ == 5 else b""
    elif typ >= 5:
        values = _decode_var(typ, enc, cur, n)
    else:
        values = _decode_fixed(typ, enc, cur, n)
    cur.done()
    if len(values) != n:
        raise StrataFormatError("column %s: row count mismatch" % name)
    if not nullable and valid is not None:
        raise StrataFormatError("column %s: NULL in a non-nullable column" % name)
    return values, valid


def read_bytes(data, columns=None):
    """Decodes a whole strata file held in memory. columns: names to load (default all)."""
    buf = memoryview(data)
    try:
        t = _parse_footer(buf, len(buf))
        wanted = [s for s in t.schema if columns is None or s[0] in columns]
        if columns is not None:
            missing = set(columns) - {s[0] for s in t.schema}
            if missing:
                raise KeyError("no column(s) %s" % ", ".join(sorted(missing)))
        for j, (name, typ, nullable, _) in enumerate(t.schema):
            if columns is not None and name not in columns:
                continue
            parts, valids = [], []
            for blocks in t.chunks:
                v, ok = _read_block(buf, blocks[j], typ, name, nullable)
                parts.append(v)
                valids.append(ok if ok is not None else np.ones(len(v), dtype=np.bool_))
            if parts:
                t.columns[name] = np.concatenate(parts)
                allvalid = np.concatenate(valids)
            else:
                t.columns[name] = np.zeros(0, dtype=object if typ >= 5 else DTYPES[typ])
                allvalid = np.ones(0, dtype=np.bool_)
            t.validity[name] = None if allvalid.all() else allvalid
        t.schema = [(n, TYPES[ty], nl, d) for (n, ty, nl, d) in t.schema]
        if columns is not None:
            t.schema = [s for s in t.schema if s[0] in {w[0] for w in wanted}]
        return t
    except StrataFormatError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError) as e:
        raise StrataFormatError("malformed file: %s" % e) from None


def read_file(path, columns=None):
    """Reads and verifies a .strata file. Raises StrataFormatError on any damage."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return read_bytes(data, columns)
    except StrataFormatError as e:
        raise StrataFormatError("%s: %s" % (path, e)) from None


def main(argv):
    if len(argv) != 2:
        print("usage: strata_reader.py FILE", file=sys.stderr)
        return 2
    t = read_file(argv[1])
    print("%s.%s: %d rows, format %d.%d, inputs %s" % (t.meta["layer"], t.meta["table"], t.num_rows,
                                                       t.version[0], t.version[1], ", ".join(t.meta["inputs"]) or "-"))
    for name, typ, nullable, desc in t.schema:
        print("  %-28s %-8s %s  %s" % (name, typ, "null" if nullable else "    ", desc))
    cols = t.to_pylist()
    for i in range(min(5, t.num_rows)):
        print("  " + ", ".join(repr(c[i]) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
