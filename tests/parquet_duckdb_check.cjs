// parquet_duckdb_check.cjs: the DuckDB side of tests/test_parquet.c. Reads
// Parquet files written by `strata export --format parquet` with DuckDB
// (the pinned @duckdb/node-api of bench/package-lock.json) and reports, per
// table, the facts the C test asserts: row count, column names and types,
// rows of the Parquet file missing from `strata export --format jsonl` and
// rows of the JSONL missing from the Parquet file (EXCEPT ALL both ways,
// NULLs compared as equal; non-finite doubles are NULL in JSONL, bytes hex),
// the row groups and strata key-value metadata DuckDB sees, and the size of
// DuckDB's own zstd Parquet of the same rows with the same key-value
// metadata.
//
// Usage: node parquet_duckdb_check.cjs SPEC.json  (an array of
//   {"parquet": P, "jsonl": J, "columns": [{"name": N, "type": strata type}], "scratch": S,
//    "csv": C (optional: strata's CSV export, compared with the JSONL too)})
// Prints one JSON line per table, or {"error": ...} and exits 1.
//
// node parquet_duckdb_check.cjs --sql FILE runs the statements of FILE
// (separated by ';' at a line end) and prints each result row as JSON:
// the README's DuckDB example is run this way.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { createRequire } = require('node:module');
const req = createRequire(path.join(__dirname, '..', 'bench', 'package.json'));
const duckdb = req('@duckdb/node-api');

const sqlStr = (s) => "'" + String(s).replace(/'/g, "''") + "'";
const ident = (s) => '"' + String(s).replace(/"/g, '""') + '"';
const jsonType = { bool: 'BOOLEAN', int32: 'INTEGER', int64: 'BIGINT', float64: 'DOUBLE', string: 'VARCHAR', bytes: 'VARCHAR' };

function pqExpr(c) {
  const q = ident(c.name);
  if (c.type === 'float64') return `CASE WHEN isnan(${q}) OR isinf(${q}) THEN NULL ELSE ${q} END AS ${q}`;
  if (c.type === 'bytes') return `lower(hex(${q})) AS ${q}`;
  return q;
}

async function one(con, t) {
  const pq = `read_parquet(${sqlStr(t.parquet)})`;
  const cols = t.columns.map((c) => `${sqlStr(c.name)}: ${sqlStr(jsonType[c.type])}`).join(', ');
  const js = `read_json(${sqlStr(t.jsonl)}, format = 'newline_delimited', columns = {${cols}})`;
  const names = t.columns.map((c) => ident(c.name)).join(', ');
  const pqSel = `SELECT ${t.columns.map(pqExpr).join(', ')} FROM ${pq}`;
  const jsSel = `SELECT ${names} FROM ${js}`;
  const val = async (sql) => (await con.runAndReadAll(sql)).getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  const rows = Number((await val(`SELECT count(*) FROM ${pq}`))[0][0]);
  const desc = await val(`DESCRIBE SELECT * FROM ${pq}`);
  const missing = Number((await val(`SELECT count(*) FROM (${jsSel} EXCEPT ALL ${pqSel})`))[0][0]);
  const extra = Number((await val(`SELECT count(*) FROM (${pqSel} EXCEPT ALL ${jsSel})`))[0][0]);
  const rgs = Number((await val(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata(${sqlStr(t.parquet)})`))[0][0]);
  const kv = await val(`SELECT decode(key), decode(value) FROM parquet_kv_metadata(${sqlStr(t.parquet)}) ORDER BY 1`);
  const kvOpt = kv.map(([k, v]) => `${sqlStr(k)}: ${sqlStr(v)}`).join(', ');
  await con.run(`COPY (SELECT * FROM ${pq}) TO ${sqlStr(t.scratch)} (FORMAT parquet, COMPRESSION zstd${kv.length ? `, KV_METADATA {${kvOpt}}` : ''})`);
  const fp = kv.find(([k]) => k === 'strata.fingerprint');
  let csv = null;
  if (t.csv) { // strata's CSV read the PostgreSQL way: unquoted empty = NULL, "" = empty string
    const src = `read_csv(${sqlStr(t.csv)}, header = true, allow_quoted_nulls = false, columns = {${cols}})`;
    const csvSel = `SELECT ${t.columns.map((c) => (c.type === 'bytes' ? ident(c.name) : pqExpr(c))).join(', ')} FROM ${src}`;
    csv = {
      missing: Number((await val(`SELECT count(*) FROM (${jsSel} EXCEPT ALL ${csvSel})`))[0][0]),
      extra: Number((await val(`SELECT count(*) FROM (${csvSel} EXCEPT ALL ${jsSel})`))[0][0]),
      empty_strings: Number((await val(`SELECT count(*) FROM ${src} WHERE ${t.columns.filter((c) => c.type === 'string').map((c) => `${ident(c.name)} = ''`).join(' OR ') || 'false'}`))[0][0]),
    };
  }
  return {
    csv,
    parquet: t.parquet, rows, names: desc.map((d) => d[0]), types: desc.map((d) => d[1]), missing, extra,
    row_groups: rgs, fingerprint: fp ? fp[1] : null, own_bytes: fs.statSync(t.parquet).size,
    duckdb_bytes: fs.statSync(t.scratch).size,
  };
}

async function runSql(file) {
  const inst = await duckdb.DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  for (const stmt of fs.readFileSync(file, 'utf8').split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) {
    const r = await con.runAndReadAll(stmt);
    for (const row of r.getRowObjectsJson()) console.log(JSON.stringify(row));
  }
}

(async () => {
  if (process.argv[2] === '--sql') return runSql(process.argv[3]);
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const inst = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
  const con = await inst.connect();
  for (const t of spec) {
    try {
      console.log(JSON.stringify(await one(con, t)));
    } catch (e) {
      console.log(JSON.stringify({ parquet: t.parquet, error: String(e.message || e) }));
    }
  }
})().catch((e) => {
  console.log(JSON.stringify({ error: String(e.message || e) }));
  process.exit(1);
});
