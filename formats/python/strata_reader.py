"""strata_reader: an independent reader of strata's layer file format (.strata).

Written from formats/FORMAT.md alone, as a second implementation that
cross-checks the C reader and writer. It trusts nothing in the file: every
CRC32C is verified before the bytes it covers are interpreted, every count
and length is checked against the bytes that remain, and every structural
rule of the spec (tiling of blocks, row and null counts, exact consumption
of the footer and of every values part, versions, value ranges of the
column type, zone maps) is enforced. Any violation raises
StrataFormatError with a message naming the file, chunk and column; no
other exception escapes for damaged input.

Decoding is vectorised with numpy: bit-packed arrays (any width 0..64) are
unpacked by gathering the 8 bytes around each value's first bit plus one
byte more, and all integer arithmetic of the encodings is done on uint64
arrays, which wrap modulo 2^64 exactly as the spec's arithmetic does.

Usage as a module:

    t = read_file("warehouse/silver/stg_sales_transactions.strata")
    t.schema, t.num_rows, t.meta, t.columns["qty"], t.validity["qty"]
    t.to_pylist()   # list of columns, None for NULL
    t.to_pandas()   # DataFrame, NULLs as pd.NA in nullable dtypes (Int64, Float64, boolean, string)
    read_file(path, columns=["qty"])   # reads only that column's blocks
    for chunk in iter_chunks(path): ...   # one chunk (<= 65,536 rows) at a time

A partitioned table (FORMAT.md "Partitioned tables": a manifest at the
table's path naming part files in <table>.parts/) reads the same way, as
one Table with the parts' rows in manifest order; every part is checked
against its manifest entry (size, footer CRC32C, rows, fingerprint, layer
and table, schema) and t.meta.parts lists the part file names.

Usage as a program: python3 strata_reader.py FILE [ROWS] prints the schema,
the metadata and the first rows (10 by default).
"""

import math
import struct
import sys

import numpy as np
import zstandard

__all__ = ["StrataFormatError", "StrataUnsupportedError", "Table", "Meta", "read_file", "read_bytes", "iter_chunks",
           "crc32c", "unpack_bits", "TYPE_NAMES", "parse_manifest"]

MAGIC = b"STRATA\x01\x00"
MANIFEST_MAGIC = b"STRATA\x02\x00"
MANIFEST_MAJOR = 1
MAJOR = 1
MINOR = 0
HEADER_BYTES = 16
TAIL_BYTES = 24
BLOCK_HEADER_BYTES = 24
BLOCK_ENTRY_BYTES = 44
SLACK = 8
FLAG_ZSTD = 1
FLAG_VALIDITY = 2
MAX_RAW = 512 << 20
MAX_DICT = 4096
MAX_CHUNK_ROWS = 65536
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

T_BOOL, T_I32, T_I64, T_F64, T_STR, T_BYTES = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {T_BOOL: "bool", T_I32: "int32", T_I64: "int64", T_F64: "float64", T_STR: "string", T_BYTES: "bytes"}
WIDTH = {T_BOOL: 1, T_I32: 4, T_I64: 8, T_F64: 8}
INT_TYPES = (T_BOOL, T_I32, T_I64)
VAR_TYPES = (T_STR, T_BYTES)
ENC_PLAIN, ENC_FOR, ENC_DELTA, ENC_RLE, ENC_DICT, ENC_CONST = 0, 1, 2, 3, 4, 5
ENC_NAMES = {0: "plain", 1: "for_bitpack", 2: "delta", 3: "rle", 4: "dict", 5: "const"}

U64 = np.uint64


class StrataFormatError(Exception):
    """The bytes are not a valid strata layer file (damaged, truncated, or
    violating a rule of FORMAT.md). The message names file/chunk/column."""


class StrataUnsupportedError(StrataFormatError):
    """The file's major version is newer than this reader (1)."""


# ---------------------------------------------------------------- CRC32C

def _make_crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)


def _crc_update_scalar(reg, data):
    """Runs the raw register (no init/final xor) over data, one byte at a time."""
    t = _CRC_TABLE
    for b in data:
        reg = (reg >> 8) ^ t[(reg ^ b) & 0xFF]
    return reg


def _apply_op(op, reg):
    """Applies the GF(2)-linear operator given by its 32 column images."""
    out = 0
    bit = 0
    while reg:
        if reg & 1:
            out ^= op[bit]
        reg >>= 1
        bit += 1
    return out


def _gf2_zeros_tables(nbytes):
    """The register update over `nbytes` zero bytes is linear over GF(2).
    Computes it by square-and-multiply on column images (starting from the
    one-zero-byte operator), then returns it as 4 lookup tables, one per
    register byte, so applying it costs 4 lookups."""
    op = [_crc_update_scalar(1 << bit, b"\x00") for bit in range(32)]
    images = [1 << bit for bit in range(32)]
    while nbytes:
        if nbytes & 1:
            images = [_apply_op(op, x) for x in images]
        nbytes >>= 1
        if nbytes:
            op = [_apply_op(op, x) for x in op]
    tables = []
    for k in range(4):
        tab = [0] * 256
        for v in range(1, 256):
            low = v & -v
            tab[v] = tab[v ^ low] ^ images[8 * k + low.bit_length() - 1]
        tables.append(tab)
    return tables


_ZEROS_CACHE = {}
_LANE_THRESHOLD = 8192


def crc32c(data, crc=0):
    """CRC32C (Castagnoli) of data, continuing from a previous result crc
    (0 to start), like st_crc32c(). crc32c(b"123456789") == 0xE3069283.

    Small inputs use the byte-wise table loop. Large inputs are cut into
    `lanes` equal segments whose raw CRCs are computed in lockstep with
    numpy (one vectorised table step per byte position), then combined in
    order: raw(A || B) = zeros_{len B}(raw(A)) xor raw(B), the register
    update being linear over GF(2)."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    reg = crc ^ 0xFFFFFFFF
    if n < _LANE_THRESHOLD:
        return _crc_update_scalar(reg, mv) ^ 0xFFFFFFFF
    lanes = 1 << max(6, min(12, (int(math.sqrt(n)) // 4).bit_length()))
    seg = n // lanes
    body = np.frombuffer(mv, dtype=np.uint8, count=seg * lanes).reshape(lanes, seg).T.copy()
    regs = np.zeros(lanes, dtype=np.uint32)
    table = _CRC_TABLE_NP
    sh8 = np.uint32(8)
    for k in range(seg):
        regs = (regs >> sh8) ^ table[(regs ^ body[k]) & 0xFF]
    tabs = _ZEROS_CACHE.get(seg)
    if tabs is None:
        tabs = _gf2_zeros_tables(seg)
        if len(_ZEROS_CACHE) < 64:
            _ZEROS_CACHE[seg] = tabs
    t0, t1, t2, t3 = tabs
    for r in regs.tolist():
        reg = t0[reg & 0xFF] ^ t1[(reg >> 8) & 0xFF] ^ t2[(reg >> 16) & 0xFF] ^ t3[reg >> 24] ^ r
    reg = _crc_update_scalar(reg, mv[seg * lanes:])
    return reg ^ 0xFFFFFFFF


# ---------------------------------------------------------------- bit unpacking

def unpack_bits(buf, n, w):
    """Unpacks n unsigned w-bit values (0 <= w <= 64) from the little-endian
    bit stream buf (at least ceil(n*w/8) bytes); returns a uint64 array.
    Value i is bits [i*w, i*w+w): the 8 bytes starting at byte (i*w)//8
    shifted right by (i*w)%8, plus the bits of the 9th byte when the value
    crosses into it."""
    if n == 0:
        return np.zeros(0, dtype=U64)
    if w == 0:
        return np.zeros(n, dtype=U64)
    need = (n * w + 7) // 8
    a = np.frombuffer(buf, dtype=np.uint8, count=need)
    if w % 8 == 0:
        k = w // 8
        wide = np.zeros((n, 8), dtype=np.uint8)
        wide[:, :k] = a.reshape(n, k)
        return wide.view("<u8").reshape(n).astype(U64)
    pad = np.zeros(need + 16, dtype=np.uint8)
    pad[:need] = a
    bit = np.arange(n, dtype=U64) * U64(w)
    byte = (bit >> U64(3)).astype(np.intp)
    sh = bit & U64(7)
    lo = pad[byte[:, None] + np.arange(8, dtype=np.intp)].view("<u8").reshape(n).astype(U64)
    hi = pad[byte + 8].astype(U64)
    v = lo >> sh
    v |= np.where(sh == 0, U64(0), hi << ((U64(64) - sh) & U64(63)))
    v &= U64((1 << w) - 1)
    return v


# ---------------------------------------------------------------- cursors

class _Cursor:
    """Bounds-checked little-endian reads over bytes; `what` names the
    structure in error messages."""

    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf, what, pos=0, end=None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.what = what

    def remaining(self):
        return self.end - self.pos

    def need(self, k, field):
        if k < 0 or k > self.end - self.pos:
            raise StrataFormatError(f"{self.what}: truncated reading {field} "
                                    f"(needs {k} bytes, {self.end - self.pos} left)")

    def take(self, k, field):
        self.need(k, field)
        b = self.buf[self.pos:self.pos + k]
        self.pos += k
        return b

    def u8(self, field):
        self.need(1, field)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def _int(self, fmt, k, field):
        self.need(k, field)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += k
        return v

    def u16(self, field):
        return self._int("<H", 2, field)

    def u32(self, field):
        return self._int("<I", 4, field)

    def u64(self, field):
        return self._int("<Q", 8, field)

    def text(self, k, field):
        raw = self.take(k, field)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise StrataFormatError(f"{self.what}: {field} is not valid UTF-8 ({e.reason})") from None

    def str16(self, field):
        return self.text(self.u16(field + " length"), field)

    def str32(self, field):
        return self.text(self.u32(field + " length"), field)

    def packed(self, n, w, field):
        """PK(n, w): ceil(n*w/8) bytes then 8 zero bytes of slack. Bits past
        n*w in the last byte must be 0, as must the slack."""
        if w > 64:
            raise StrataFormatError(f"{self.what}: {field} bit width {w} > 64")
        need = (n * w + 7) // 8
        raw = self.take(need + SLACK, field)
        if any(raw[need:]):
            raise StrataFormatError(f"{self.what}: {field} slack bytes are not zero")
        tail_bits = (n * w) % 8
        if tail_bits and raw[need - 1] >> tail_bits:
            raise StrataFormatError(f"{self.what}: {field} has bits set past its last value")
        return unpack_bits(raw, n, w)

    def done(self):
        if self.pos != self.end:
            raise StrataFormatError(f"{self.what}: {self.end - self.pos} trailing bytes not consumed")


# ---------------------------------------------------------------- results

class Meta(dict):
    """Footer metadata, readable both as a dict (meta["kv"]) and as
    attributes (meta.kv): layer, table, inputs (list of str), params (str),
    fingerprint (int), kv (dict), kv_pairs (list of (key, value) in file
    order), version ((major, minor)), chunk_rows (list of int)."""

    def __init__(self):
        super().__init__(layer="", table="", inputs=[], params="", fingerprint=0, kv={}, kv_pairs=[],
                         version=(MAJOR, MINOR), chunk_rows=[])

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


class Table:
    """A decoded table. schema: list of (name, type name, nullable, description)
    for the loaded columns; num_rows; meta (Meta); columns: name -> numpy array
    (bool, int32, int64, float64; object arrays of str / bytes); validity:
    name -> numpy bool array (False = NULL) or None when no value is NULL;
    blocks: name -> list of per-chunk dicts (encoding, zstd, stored and raw
    sizes, null count, zone map) as recorded in the footer."""

    def __init__(self, schema, num_rows, meta, columns, validity, blocks):
        self.schema = schema
        self.num_rows = num_rows
        self.meta = meta
        self.columns = columns
        self.validity = validity
        self.blocks = blocks

    @property
    def version(self):
        """(major, minor) format version of the file."""
        return self.meta.version

    @property
    def chunks(self):
        """Per chunk, the list of block dicts of the loaded columns."""
        names = self.column_names()
        n = len(self.meta.chunk_rows)
        return [[self.blocks[c][k] for c in names] for k in range(n)]

    def column_names(self):
        return [f[0] for f in self.schema]

    def to_pylist(self):
        """Columns as Python lists (bool/int/float/str/bytes), None for NULL."""
        out = []
        for name, _, _, _ in self.schema:
            vals = self.columns[name].tolist()
            valid = self.validity[name]
            if valid is not None:
                vals = [v if ok else None for v, ok in zip(vals, valid.tolist())]
            out.append(vals)
        return out

    def to_pandas(self, float_nan=False):
        """A pandas DataFrame with NULLs as missing values, in pandas'
        nullable dtypes: bool -> "boolean", int32 -> "Int32", int64 ->
        "Int64", float64 -> "Float64", string -> "string"; bytes stay an
        object column with None for NULL (pandas has no nullable bytes
        dtype). With float_nan=True, float64 columns are plain numpy float64
        with NaN for NULL (a stored NaN and a NULL then look alike). Needs
        pandas (imported here, not by the module)."""
        import pandas as pd

        data = {}
        for name, typ, _, _ in self.schema:
            vals = self.columns[name]
            valid = self.validity[name]
            mask = np.zeros(len(vals), dtype=np.bool_) if valid is None else ~valid
            if typ == "bool":
                data[name] = pd.arrays.BooleanArray(vals.astype(np.bool_), mask.copy())
            elif typ in ("int32", "int64"):
                data[name] = pd.arrays.IntegerArray(vals.copy(), mask.copy())
            elif typ == "float64" and float_nan:
                out = vals.astype(np.float64, copy=True)
                out[mask] = np.nan
                data[name] = out
            elif typ == "float64":
                data[name] = pd.arrays.FloatingArray(vals.astype(np.float64, copy=True), mask.copy())
            elif typ == "string":
                obj = vals.astype(object, copy=True)
                obj[mask] = None
                data[name] = pd.array(obj, dtype="string")
            else:
                obj = vals.astype(object, copy=True)
                obj[mask] = None
                data[name] = obj
        return pd.DataFrame(data, index=pd.RangeIndex(self.num_rows), columns=self.column_names())

    def rows(self, start=0, stop=None):
        """Rows [start, stop) as tuples, None for NULL."""
        cols = self.to_pylist()
        stop = self.num_rows if stop is None else min(stop, self.num_rows)
        return [tuple(c[i] for c in cols) for i in range(start, stop)]


# ---------------------------------------------------------------- footer

class _Field:
    __slots__ = ("name", "type", "nullable", "description")


class _Entry:
    __slots__ = ("offset", "size", "encoding", "flags", "has_minmax", "null_count", "raw_bytes", "min", "max")


def _parse(buf, name):
    """Checks the header and tail, parses the footer; returns (fields, meta,
    total_rows, chunk_rows, entries[chunk][col])."""
    size = len(buf)
    if size < HEADER_BYTES + TAIL_BYTES:
        raise StrataFormatError(f"{name}: {size} bytes is too small for a layer file (>= 40)")
    head = bytes(buf[:HEADER_BYTES])
    if head[:8] != MAGIC:
        raise StrataFormatError(f"{name}: bad magic at the start (not a strata layer file)")
    tail = size - TAIL_BYTES
    tail_bytes = bytes(buf[tail:])
    if tail_bytes[16:] != MAGIC:
        raise StrataFormatError(f"{name}: bad magic at the end (truncated or not a strata file)")
    major, minor, hcrc = struct.unpack_from("<HHI", head, 8)
    if crc32c(head[:12]) != hcrc:
        raise StrataFormatError(f"{name}: header checksum mismatch")
    flen, fcrc, tmajor, tminor = struct.unpack_from("<QIHH", tail_bytes, 0)
    if (major, minor) != (tmajor, tminor):
        raise StrataFormatError(f"{name}: header version {major}.{minor} differs from tail version "
                                f"{tmajor}.{tminor}")
    if major > MAJOR:
        raise StrataUnsupportedError(f"{name}: format version {major}.{minor} is newer than this reader "
                                     f"({MAJOR}.{MINOR})")
    if major < 1:
        raise StrataFormatError(f"{name}: format major version {major} does not exist")
    if flen > size - HEADER_BYTES - TAIL_BYTES:
        raise StrataFormatError(f"{name}: footer length {flen} exceeds the file ({size} bytes)")
    fstart = tail - flen
    footer = bytes(buf[fstart:tail])
    if crc32c(footer) != fcrc:
        raise StrataFormatError(f"{name}: footer checksum mismatch")

    c = _Cursor(footer, f"{name}: footer")
    nf = c.u32("column count")
    if not 1 <= nf <= 65535:
        raise StrataFormatError(f"{name}: footer: column count {nf} not in 1..65535")
    fields = []
    seen = set()
    for j in range(nf):
        f = _Field()
        f.type = c.u8(f"column {j} type")
        if f.type not in TYPE_NAMES:
            raise StrataFormatError(f"{name}: footer: column {j} has unknown type id {f.type}")
        nl = c.u8(f"column {j} nullable")
        if nl > 1:
            raise StrataFormatError(f"{name}: footer: column {j} nullable flag {nl} is not 0/1")
        f.nullable = bool(nl)
        f.name = c.str16(f"column {j} name")
        f.description = c.str32(f"column {j} description")
        if f.name in seen:
            raise StrataFormatError(f"{name}: footer: duplicate column name '{f.name}' "
                                    f"(this reader keys columns by name)")
        seen.add(f.name)
        fields.append(f)
    meta = Meta()
    meta.version = (major, minor)
    total = c.u64("total rows")
    meta.layer = c.str16("layer")
    meta.table = c.str16("table")
    ni = c.u32("input count")
    c.need(2 * ni, "inputs")
    meta.inputs = [c.str16(f"input {i}") for i in range(ni)]
    meta.params = c.str32("params")
    meta.fingerprint = c.u64("fingerprint")
    nk = c.u32("key/value count")
    c.need(6 * nk, "key/value pairs")
    for i in range(nk):
        k = c.str16(f"key {i}")
        v = c.str32(f"value of key '{k}'")
        meta.kv_pairs.append((k, v))
        meta.kv[k] = v
    nc = c.u32("chunk count")
    c.need(nc * (4 + nf * BLOCK_ENTRY_BYTES), f"{nc} chunk entries")
    chunk_rows = []
    entries = []
    expect = HEADER_BYTES
    row_sum = 0
    for k in range(nc):
        rows = c.u32(f"chunk {k} rows")
        if not 1 <= rows <= MAX_CHUNK_ROWS:
            raise StrataFormatError(f"{name}: footer: chunk {k} has {rows} rows, not 1..{MAX_CHUNK_ROWS}")
        row_sum += rows
        chunk_rows.append(rows)
        ents = []
        for j, f in enumerate(fields):
            where = f"{name}: footer: chunk {k} column '{f.name}'"
            e = _Entry()
            (e.offset, e.size, e.encoding, e.flags, e.has_minmax, reserved, e.null_count, e.raw_bytes,
             e.min, e.max) = struct.unpack_from("<QIBBBBIQQQ", c.take(BLOCK_ENTRY_BYTES, "block entry"))
            if e.offset != expect:
                raise StrataFormatError(f"{where}: block offset {e.offset}, expected {expect} "
                                        f"(blocks must tile the file)")
            if e.size < BLOCK_HEADER_BYTES:
                raise StrataFormatError(f"{where}: block size {e.size} < {BLOCK_HEADER_BYTES}")
            expect += e.size
            if expect > fstart:
                raise StrataFormatError(f"{where}: block runs past the footer start {fstart}")
            if e.flags & ~(FLAG_ZSTD | FLAG_VALIDITY):
                raise StrataFormatError(f"{where}: unknown block flags {e.flags:#x}")
            if e.has_minmax > 1:
                raise StrataFormatError(f"{where}: has_minmax {e.has_minmax} is not 0/1")
            if reserved != 0:
                raise StrataFormatError(f"{where}: reserved byte is {reserved}, not 0")
            if e.null_count > rows:
                raise StrataFormatError(f"{where}: null count {e.null_count} > rows {rows}")
            if e.null_count and not f.nullable:
                raise StrataFormatError(f"{where}: {e.null_count} NULLs in a non-nullable column")
            if bool(e.flags & FLAG_VALIDITY) != (e.null_count > 0):
                raise StrataFormatError(f"{where}: validity flag disagrees with null count {e.null_count}")
            if not e.has_minmax and (e.min or e.max):
                raise StrataFormatError(f"{where}: zone map min/max set without has_minmax")
            if e.has_minmax and (f.type in VAR_TYPES or e.null_count == rows):
                raise StrataFormatError(f"{where}: has_minmax set for a string/bytes or all-NULL block")
            if f.type in WIDTH and e.raw_bytes != rows * WIDTH[f.type]:
                raise StrataFormatError(f"{where}: raw bytes {e.raw_bytes} != rows x width "
                                        f"{rows * WIDTH[f.type]}")
            if e.null_count == rows and e.encoding != ENC_CONST:
                raise StrataFormatError(f"{where}: all-NULL block with encoding {e.encoding}, not 5 (const)")
            ents.append(e)
        entries.append(ents)
    if row_sum != total:
        raise StrataFormatError(f"{name}: footer: chunk rows add up to {row_sum}, total rows says {total}")
    if expect != fstart:
        raise StrataFormatError(f"{name}: blocks end at {expect} but the footer starts at {fstart} "
                                f"(gap between blocks and footer)")
    ns = c.u32("section count")
    for i in range(ns):
        c.u32(f"section {i} tag")
        c.take(c.u32(f"section {i} length"), f"section {i} bytes")  # unknown tag: skipped
    c.done()
    meta.chunk_rows = chunk_rows
    return fields, meta, total, chunk_rows, entries


# ---------------------------------------------------------------- blocks

def _fit(v, t, where, valid):
    """Widened uint64 values -> the column type's numpy array, checking the
    range of the present values (NULL slots are ignored, and become 0)."""
    if valid is not None:
        v = np.where(valid, v, U64(0))
    if t == T_I64:
        return v.view(np.int64)
    s = v.view(np.int64)
    if t == T_I32:
        if s.size and (s.min() < -(1 << 31) or s.max() > (1 << 31) - 1):
            raise StrataFormatError(f"{where}: decoded value outside the int32 range")
        return s.astype(np.int32)
    if v.size and v.max() > 1:
        raise StrataFormatError(f"{where}: decoded bool value is not 0/1")
    return v.astype(np.bool_)


def _i64(c, field):
    return U64(c.u64(field))


def _offset_packed(c, count, base_field, width_field, values_field):
    """count bit-packed values of one width, each plus a shared base (the
    frame of reference of RLE run values and of integer dictionaries)."""
    base = _i64(c, base_field)
    w = c.u8(width_field)
    return c.packed(count, w, values_field) + base


def _decode_ints(c, t, enc, n, where):
    """Integer encodings 0..5 on bool/int32/int64 -> uint64 widened values."""
    if enc == ENC_PLAIN:
        w = WIDTH[t]
        raw = c.take(n * w, "plain values")
        if t == T_BOOL:
            return np.frombuffer(raw, dtype=np.uint8).astype(U64)
        if t == T_I32:
            return np.frombuffer(raw, dtype="<i4").astype(np.int64).view(U64)
        return np.frombuffer(raw, dtype="<u8").astype(U64)
    if enc == ENC_FOR:
        base = _i64(c, "FOR base")
        w = c.u8("FOR width")
        return c.packed(n, w, "FOR values") + base
    if enc == ENC_DELTA:
        first = _i64(c, "delta first")
        base = _i64(c, "delta base")
        w = c.u8("delta width")
        d = c.packed(n - 1, w, "deltas") + base
        out = np.empty(n, dtype=U64)
        out[0] = first
        out[1:] = d
        return np.cumsum(out, dtype=U64)
    if enc == ENC_RLE:
        r = c.u32("run count")
        if not 1 <= r <= n:
            raise StrataFormatError(f"{where}: run count {r} not in 1..{n}")
        vals = _offset_packed(c, r, "run base", "run value width", "run values")
        w2 = c.u8("run length width")
        lens = c.packed(r, w2, "run lengths")
        if lens.max() > U64(n - 1):
            raise StrataFormatError(f"{where}: a run is longer than the block")
        lens = lens.astype(np.int64) + 1
        if int(lens.sum()) != n:
            raise StrataFormatError(f"{where}: run lengths add up to {int(lens.sum())}, not {n} rows")
        return np.repeat(vals, lens)
    if enc == ENC_DICT:
        d = c.u32("dictionary size")
        if not 1 <= d <= MAX_DICT:
            raise StrataFormatError(f"{where}: dictionary size {d} not in 1..{MAX_DICT}")
        dic = _offset_packed(c, d, "dictionary base", "dictionary width", "dictionary")
        return dic[_codes(c, n, d, where)]
    if enc == ENC_CONST:
        return np.full(n, c.u64("const value"), dtype=U64)
    raise StrataFormatError(f"{where}: unknown encoding {enc} (written by a newer minor version?)")


def _codes(c, n, d, where):
    wc = c.u8("code width")
    codes = c.packed(n, wc, "codes")
    if n and codes.max() >= U64(d):
        raise StrataFormatError(f"{where}: dictionary code >= dictionary size {d}")
    return codes.astype(np.intp)


def _decode_f64(c, enc, n, where):
    if enc == ENC_PLAIN:
        return np.frombuffer(c.take(n * 8, "plain values"), dtype="<f8").astype(np.float64)
    if enc == ENC_DICT:
        d = c.u32("dictionary size")
        if not 1 <= d <= MAX_DICT:
            raise StrataFormatError(f"{where}: dictionary size {d} not in 1..{MAX_DICT}")
        dic = np.frombuffer(c.take(8 * d, "dictionary"), dtype="<f8").astype(np.float64)
        return dic[_codes(c, n, d, where)]
    if enc == ENC_CONST:
        return np.full(n, c.u64("const value"), dtype=U64).view(np.float64)
    if enc in ENC_NAMES:
        raise StrataFormatError(f"{where}: encoding {ENC_NAMES[enc]} is not defined for float64")
    raise StrataFormatError(f"{where}: unknown encoding {enc} (written by a newer minor version?)")


def _lengths(c, n, field, where):
    base = _i64(c, field + " length base")
    w = c.u8(field + " length width")
    lens = c.packed(n, w, field + " lengths") + base
    if n and lens.max() > U64(c.remaining()):
        raise StrataFormatError(f"{where}: a {field} length runs past the block")
    total = int(lens.sum(dtype=U64))
    c.need(total, field + " bytes")
    return lens.astype(np.int64), total


def _decode_var(c, t, enc, n, where):
    """Returns (object array of str/bytes, total value bytes)."""
    if enc == ENC_PLAIN:
        lens, total = _lengths(c, n, "value", where)
        return _split(c.take(total, "value bytes"), lens, t, where), total
    if enc == ENC_DICT:
        d = c.u32("dictionary size")
        if not 1 <= d <= MAX_DICT:
            raise StrataFormatError(f"{where}: dictionary size {d} not in 1..{MAX_DICT}")
        lens, total = _lengths(c, d, "dictionary", where)
        dic = _split(c.take(total, "dictionary bytes"), lens, t, where)
        codes = _codes(c, n, d, where)
        return dic[codes], int(lens[codes].sum())
    if enc == ENC_CONST:
        k = c.u32("const length")
        v = _split(c.take(k, "const bytes"), np.array([k], dtype=np.int64), t, where)[0]
        out = np.empty(n, dtype=object)
        out[:] = [v] * n
        return out, k * n
    if enc in ENC_NAMES:
        raise StrataFormatError(f"{where}: encoding {ENC_NAMES[enc]} is not defined for {TYPE_NAMES[t]}")
    raise StrataFormatError(f"{where}: unknown encoding {enc} (written by a newer minor version?)")


def _split(raw, lens, t, where):
    raw = bytes(raw)
    ends = np.cumsum(lens).tolist()
    starts = [0] + ends[:-1]
    out = np.empty(len(ends), dtype=object)
    if t == T_BYTES:
        out[:] = [raw[s:e] for s, e in zip(starts, ends)]
        return out
    try:
        out[:] = [raw[s:e].decode("utf-8") for s, e in zip(starts, ends)]
    except UnicodeDecodeError as e:
        raise StrataFormatError(f"{where}: string value is not valid UTF-8 ({e.reason})") from None
    return out


def _checked_block(buf, e, where):
    """The block's 24-byte header and stored payload, after its CRC32C."""
    block = bytes(buf[e.offset:e.offset + e.size])  # one read when buf is a _FileBuf
    hdr = block[:BLOCK_HEADER_BYTES]
    payload = block[BLOCK_HEADER_BYTES:]
    if crc32c(payload, crc32c(hdr[:20])) != struct.unpack_from("<I", hdr, 20)[0]:
        raise StrataFormatError(f"{where}: block checksum mismatch")
    return hdr, payload


def _decode_block(buf, e, f, rows, where):
    """Verifies and decodes one block; returns (values, validity or None)."""
    hdr, payload = _checked_block(buf, e, where)
    enc, flags, tid, brows, nulls, stored, raw_size, _ = struct.unpack("<BBHIIIII", hdr)
    if enc != e.encoding or flags != e.flags:
        raise StrataFormatError(f"{where}: block header encoding/flags {enc}/{flags:#x} differ from the "
                                f"footer's {e.encoding}/{e.flags:#x}")
    if tid != f.type:
        raise StrataFormatError(f"{where}: block type id {tid} differs from the schema's {f.type}")
    if brows != rows:
        raise StrataFormatError(f"{where}: block rows {brows} differ from the chunk's {rows}")
    if nulls != e.null_count:
        raise StrataFormatError(f"{where}: block null count {nulls} differs from the footer's {e.null_count}")
    if stored != e.size - BLOCK_HEADER_BYTES:
        raise StrataFormatError(f"{where}: stored size {stored} != block size - 24 ({e.size - 24})")
    if flags & FLAG_ZSTD:
        if raw_size > MAX_RAW:
            raise StrataFormatError(f"{where}: raw payload size {raw_size} over the 512 MiB limit")
        data = _unzstd(bytes(payload), raw_size, where)
    else:
        if raw_size != stored:
            raise StrataFormatError(f"{where}: raw size {raw_size} != stored size {stored} without zstd")
        data = payload
    c = _Cursor(data, where)
    valid = None
    if flags & FLAG_VALIDITY:
        nb = (rows + 7) // 8
        bm = np.frombuffer(c.take(nb, "validity bitmap"), dtype=np.uint8)
        bits = np.unpackbits(bm, bitorder="little")
        if bits[rows:].any():
            raise StrataFormatError(f"{where}: validity bits set past the last row")
        valid = bits[:rows].astype(np.bool_)
        clear = rows - int(np.count_nonzero(valid))
        if clear != nulls:
            raise StrataFormatError(f"{where}: validity bitmap has {clear} NULLs, null count says {nulls}")
    t = f.type
    if nulls == rows:  # all NULL: empty values part (encoding 5 checked in the footer)
        c.done()
        if t in VAR_TYPES:
            vals = np.empty(rows, dtype=object)
            vals[:] = [b"" if t == T_BYTES else ""] * rows
            var_total = 0
        else:
            vals = np.zeros(rows, dtype={T_BOOL: np.bool_, T_I32: np.int32, T_I64: np.int64,
                                         T_F64: np.float64}[t])
        _check_zone(e, f, vals, valid, where, var_total if t in VAR_TYPES else None)
        return vals, valid
    var_total = None
    if t in INT_TYPES:
        vals = _fit(_decode_ints(c, t, enc, rows, where), t, where, valid)
    elif t == T_F64:
        vals = _decode_f64(c, enc, rows, where)
    else:
        vals, var_total = _decode_var(c, t, enc, rows, where)
    c.done()
    _check_zone(e, f, vals, valid, where, var_total)
    if valid is not None and t not in INT_TYPES:  # readers ignore NULL slots: normalise them
        vals = vals.copy()
        vals[~valid] = 0.0 if t == T_F64 else ("" if t == T_STR else b"")
    return vals, valid


def _unzstd(payload, raw_size, where):
    if payload[:4] != ZSTD_MAGIC:
        raise StrataFormatError(f"{where}: zstd flag set but the payload is not a zstd frame")
    try:
        fp = zstandard.get_frame_parameters(payload)
        if fp.content_size != raw_size:
            raise StrataFormatError(f"{where}: zstd frame content size {fp.content_size} != raw size "
                                    f"{raw_size}")
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(payload)
        if not d.eof:
            raise StrataFormatError(f"{where}: zstd frame is truncated")
        if d.unused_data:
            raise StrataFormatError(f"{where}: {len(d.unused_data)} bytes after the zstd frame")
    except zstandard.ZstdError as e:
        raise StrataFormatError(f"{where}: zstd payload does not decompress ({e})") from None
    if len(out) != raw_size:
        raise StrataFormatError(f"{where}: zstd frame gave {len(out)} bytes, raw size says {raw_size}")
    return out


def _check_zone(e, f, vals, valid, where, var_total):
    """raw_bytes for strings and the zone map against the decoded values."""
    t = f.type
    if t in VAR_TYPES:
        if e.raw_bytes != var_total:
            raise StrataFormatError(f"{where}: raw bytes {e.raw_bytes} != total value bytes {var_total}")
        return
    present = vals if valid is None else vals[valid]
    if t == T_F64:
        present = present[~np.isnan(present)]
    if present.size == 0:
        if e.has_minmax:
            raise StrataFormatError(f"{where}: zone map present but no value to bound")
        return
    if not e.has_minmax:
        raise StrataFormatError(f"{where}: zone map missing")
    if t == T_F64:
        mn = np.array([e.min], dtype=U64).view(np.float64)[0]
        mx = np.array([e.max], dtype=U64).view(np.float64)[0]
        ok = mn == present.min() and mx == present.max()  # -0.0 == 0.0: either may be recorded
    else:
        mn = np.array([e.min], dtype=U64).view(np.int64)[0]
        mx = np.array([e.max], dtype=U64).view(np.int64)[0]
        p = present.astype(np.int64)
        ok = mn == p.min() and mx == p.max()
    if not ok:
        raise StrataFormatError(f"{where}: zone map min/max do not match the values")


# ---------------------------------------------------------------- API

_DTYPES = {T_BOOL: np.bool_, T_I32: np.int32, T_I64: np.int64, T_F64: np.float64, T_STR: object, T_BYTES: object}


class _FileBuf:
    """A file read lazily: len() is its size, a slice is one seek + read.
    Lets the decoder read the header, tail, footer and only the blocks it
    needs. Works on any binary file object with seek/read."""

    def __init__(self, fh, name):
        self._fh = fh
        self._name = name
        fh.seek(0, 2)
        self._size = fh.tell()

    def __len__(self):
        return self._size

    def __getitem__(self, s):
        start, stop, _ = s.indices(self._size)
        if stop <= start:
            return b""
        self._fh.seek(start)
        data = self._fh.read(stop - start)
        if len(data) != stop - start:
            raise StrataFormatError(f"{self._name}: file shrank while being read")
        return data


def _select(fields, columns, name):
    index = {f.name: j for j, f in enumerate(fields)}
    if columns is None:
        return list(range(len(fields)))
    which = []
    for cname in columns:
        if cname not in index:
            raise KeyError(f"{name}: no column '{cname}'")
        which.append(index[cname])
    return which


def _decode(buf, name, parsed, which, chunks, verify_all):
    """Decodes columns `which` of the chunks `chunks` into a Table."""
    fields, meta, total, chunk_rows, entries = parsed
    if verify_all:
        loaded = set(which)
        for k in chunks:
            for j, e in enumerate(entries[k]):
                if j not in loaded:
                    _checked_block(buf, e, f"{name}: chunk {k} column '{fields[j].name}'")
    schema, cols, validity, blocks = [], {}, {}, {}
    for j in which:
        f = fields[j]
        parts, vparts, infos = [], [], []
        any_null = False
        for k in chunks:
            rows = chunk_rows[k]
            e = entries[k][j]
            where = f"{name}: chunk {k} column '{f.name}'"
            vals, valid = _decode_block(buf, e, f, rows, where)
            parts.append(vals)
            vparts.append(valid)
            any_null |= valid is not None
            infos.append({"rows": rows, "encoding": ENC_NAMES.get(e.encoding, str(e.encoding)),
                          "zstd": bool(e.flags & FLAG_ZSTD), "size_bytes": e.size, "raw_bytes": e.raw_bytes,
                          "null_count": e.null_count, "has_minmax": bool(e.has_minmax),
                          "min": e.min, "max": e.max})
        if parts:
            arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            arr = np.empty(0, dtype=_DTYPES[f.type])
        cols[f.name] = arr
        if any_null:
            validity[f.name] = np.concatenate([v if v is not None else np.ones(len(p), dtype=np.bool_)
                                               for v, p in zip(vparts, parts)])
        else:
            validity[f.name] = None
        schema.append((f.name, TYPE_NAMES[f.type], f.nullable, f.description))
        blocks[f.name] = infos
    n_rows = total if len(chunks) == len(chunk_rows) else sum(chunk_rows[k] for k in chunks)
    return Table(schema, n_rows, meta, cols, validity, blocks)


def read_bytes(buf, columns=None, name="<bytes>", verify_all=True):
    """Decodes a whole layer file held in memory. columns: None for all, or
    a list of names (the Table holds them in that order). The header, the
    footer and every block are checksummed (with verify_all=False, only the
    blocks of the loaded columns); only the loaded columns are decoded.
    Raises StrataFormatError on any damage, KeyError for an unknown column
    name."""
    buf = bytes(buf)
    parsed = _parse(buf, name)
    which = _select(parsed[0], columns, name)
    return _decode(buf, name, parsed, which, range(len(parsed[3])), verify_all)


def _open(path_or_file):
    """(file object, name, whether we opened it)."""
    if hasattr(path_or_file, "read") and hasattr(path_or_file, "seek"):
        return path_or_file, getattr(path_or_file, "name", "<file>"), False
    return open(path_or_file, "rb"), str(path_or_file), True


# ---------------------------------------------------------------- partitioned tables

def parse_manifest(buf, name="<manifest>"):
    """Parses a partitioned table's manifest (FORMAT.md "Partitioned
    tables"): a dict with layer, table, rows, fingerprint and parts, a list
    of dicts (name, rows, size, footer_crc, fingerprint) in row order.
    Raises StrataFormatError for anything the format forbids."""
    buf = bytes(buf)
    if len(buf) < 20 or buf[:8] != MANIFEST_MAGIC:
        raise StrataFormatError(f"{name}: not a manifest (too short or bad magic)")
    major, _minor, body = struct.unpack_from("<HHI", buf, 8)
    if major > MANIFEST_MAJOR:
        raise StrataUnsupportedError(f"{name}: manifest version {major} is newer than this reader ({MANIFEST_MAJOR})")
    if body + 20 != len(buf):
        raise StrataFormatError(f"{name}: manifest length does not match its file")
    if crc32c(buf[:16 + body]) != struct.unpack_from("<I", buf, 16 + body)[0]:
        raise StrataFormatError(f"{name}: manifest checksum mismatch")
    c = _Cursor(buf, name, 16, 16 + body)
    m = {"layer": c.str16("layer"), "table": c.str16("table"), "rows": c.u64("total rows"),
         "fingerprint": c.u64("fingerprint")}
    n = c.u32("part count")
    if not 1 <= n <= 65535:
        raise StrataFormatError(f"{name}: manifest has {n} parts (1..65535)")
    parts = []
    for i in range(n):
        p = {"name": c.str16(f"part {i} name"), "rows": c.u64(f"part {i} rows"), "size": c.u64(f"part {i} size"),
             "footer_crc": c.u32(f"part {i} footer crc"), "fingerprint": c.u64(f"part {i} fingerprint")}
        pn = p["name"]
        if not (8 <= len(pn.encode()) <= 255) or not pn.endswith(".strata") or "/" in pn or pn.startswith("."):
            raise StrataFormatError(f"{name}: manifest part {i} has a bad name")
        parts.append(p)
    c.done()
    if sum(p["rows"] for p in parts) != m["rows"]:
        raise StrataFormatError(f"{name}: manifest row counts do not add up")
    m["parts"] = parts
    return m


def _parts_dir(path):
    p = str(path)
    return (p[:-7] if p.endswith(".strata") else p) + ".parts"


def _read_part(path, entry, m, columns, verify_all):
    """Part `entry` of manifest m, checked against its entry."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise StrataFormatError(f"part '{path}' is missing") from None
    bad = None
    if len(raw) != entry["size"] or len(raw) < TAIL_BYTES or \
            struct.unpack_from("<I", raw, len(raw) - TAIL_BYTES + 8)[0] != entry["footer_crc"]:
        bad = "is not the file the manifest names (size or footer checksum differ)"
    if bad:
        raise StrataFormatError(f"part '{path}' {bad}")
    t = read_bytes(raw, columns=columns, name=path, verify_all=verify_all)
    if t.meta.fingerprint != entry["fingerprint"]:
        bad = "is not the file the manifest names (fingerprint differs)"
    elif t.num_rows != entry["rows"]:
        bad = "has another row count than the manifest says"
    elif (t.meta.layer, t.meta.table) != (m["layer"], m["table"]):
        bad = "belongs to another table"
    if bad:
        raise StrataFormatError(f"part '{path}' {bad}")
    return t


def _join_parts(tables, m, names):
    """One Table of the parts' Tables, rows in part order."""
    first = tables[0]
    for t in tables[1:]:
        if [f[:3] for f in t.schema] != [f[:3] for f in first.schema]:
            raise StrataFormatError(f"{names[0]}: a part has another schema than the first part")
    cols, validity, blocks = {}, {}, {}
    for fname, _, _, _ in first.schema:
        cols[fname] = np.concatenate([t.columns[fname] for t in tables])
        if any(t.validity[fname] is not None for t in tables):
            validity[fname] = np.concatenate([t.validity[fname] if t.validity[fname] is not None
                                              else np.ones(t.num_rows, dtype=np.bool_) for t in tables])
        else:
            validity[fname] = None
        blocks[fname] = [b for t in tables for b in t.blocks[fname]]
    meta = Meta()
    meta.update(first.meta)
    meta.fingerprint = m["fingerprint"]
    meta.chunk_rows = [r for t in tables for r in t.meta.chunk_rows]
    meta.parts = [p["name"] for p in m["parts"]]
    return Table(first.schema, m["rows"], meta, cols, validity, blocks)


def _read_partitioned(path, columns, verify_all):
    with open(path, "rb") as fh:
        m = parse_manifest(fh.read(), str(path))
    d = _parts_dir(path)
    names = [f"{d}/{p['name']}" for p in m["parts"]]
    tables = [_read_part(n, p, m, columns, verify_all) for n, p in zip(names, m["parts"])]
    return _join_parts(tables, m, names)


def _is_manifest(path):
    if hasattr(path, "read"):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == MANIFEST_MAGIC
    except OSError:
        return False


def read_file(path, columns=None, verify_all=None):
    """Reads and verifies the layer file at path (or a binary file object
    with read/seek). Reads the header, the footer and only the blocks of
    the requested columns: with columns=["a"], the other columns' bytes are
    never read. verify_all=True also reads and checksums every other block
    (the default when columns is None, since those blocks are read anyway).
    Same checks and errors as read_bytes. A partitioned table's manifest
    reads as the table of all its parts."""
    if _is_manifest(path):
        return _read_partitioned(path, columns, (columns is None) if verify_all is None else verify_all)
    fh, name, mine = _open(path)
    try:
        buf = _FileBuf(fh, name)
        parsed = _parse(buf, name)
        which = _select(parsed[0], columns, name)
        verify = (columns is None) if verify_all is None else verify_all
        return _decode(buf, name, parsed, which, range(len(parsed[3])), verify)
    finally:
        if mine:
            fh.close()


def iter_chunks(path, columns=None):
    """Yields one Table per chunk (row group) of the layer file, reading
    and decoding only that chunk's blocks of the requested columns, so
    memory stays at one chunk (at most 65,536 rows) whatever the table's
    size. Each Table has the file's meta and schema; num_rows is the
    chunk's. A partitioned table yields its parts' chunks in order."""
    if _is_manifest(path):
        with open(path, "rb") as fh:
            m = parse_manifest(fh.read(), str(path))
        for p in m["parts"]:
            part = f"{_parts_dir(path)}/{p['name']}"
            _read_part(part, p, m, [], False)  # checked against its entry before its rows are handed out
            yield from iter_chunks(part, columns)
        return
    fh, name, mine = _open(path)
    try:
        buf = _FileBuf(fh, name)
        parsed = _parse(buf, name)
        which = _select(parsed[0], columns, name)
        for k in range(len(parsed[3])):
            yield _decode(buf, name, parsed, which, [k], False)
    finally:
        if mine:
            fh.close()


def _show(v):
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return "0x" + v.hex() if len(v) <= 32 else f"0x{v[:32].hex()}... ({len(v)} bytes)"
    if isinstance(v, str) and len(v) > 40:
        return repr(v[:40]) + f"... ({len(v)} chars)"
    return repr(v)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print("usage: strata_reader.py FILE [ROWS]", file=sys.stderr)
        return 2
    n = int(argv[2]) if len(argv) > 2 else 10
    try:
        t = read_file(argv[1])
    except StrataFormatError as e:
        print(f"strata_reader: {e}", file=sys.stderr)
        return 6
    m = t.meta
    print(f"{m.layer}.{m.table}: {t.num_rows} rows in {len(m.chunk_rows)} chunks, "
          f"format {m.version[0]}.{m.version[1]}, fingerprint {m.fingerprint:016x}")
    if m.inputs:
        print("inputs: " + ", ".join(m.inputs))
    if m.params:
        print("params: " + m.params)
    for k, v in m.kv_pairs:
        print(f"kv: {k} = {v}")
    print("schema:")
    for name, typ, nullable, desc in t.schema:
        encs = sorted({b["encoding"] + ("+zstd" if b["zstd"] else "") for b in t.blocks[name]})
        print(f"  {name:<28} {typ:<8} {'null' if nullable else '    '}  {','.join(encs):<22} {desc}")
    print(f"first {min(n, t.num_rows)} rows:")
    names = t.column_names()
    for row in t.rows(0, n):
        print("  " + ", ".join(f"{c}={_show(v)}" for c, v in zip(names, row)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
