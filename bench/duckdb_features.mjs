// duckdb_features.mjs: the DuckDB side of the features and file-size
// comparisons (bench/README.md). Loads the silver transaction rows from CSV
// into in-memory tables (load time reported, not compared), then times ONLY
// the queries, at the requested thread count: the feature query (the
// features strata's gold step computes for int_customer_analytics) alone,
// and the whole gold step's two tables (that query, then the unified
// (customer, period, material) rows of int_transactions_unified). Also
// writes the same rows as Parquet+zstd and reports the sizes, and the sums
// over all rows of both tables so bench.py can check both engines agree.
//
// Usage: node duckdb_features.mjs --sales S.csv --foc F.csv --threads N
//          --reps R [--parquet-dir DIR]
// Prints one JSON object on stdout.
import { DuckDBInstance } from '@duckdb/node-api';
import { statSync } from 'node:fs';
import { join } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const threads = Number(args.threads || 1);
const reps = Number(args.reps || 5);

// Silver schema (docs/TABLES.md): stg_sales_transactions / stg_foc_transactions.
const COLUMNS = `{'transaction_id': 'BIGINT', 'customer_id': 'BIGINT', 'year': 'INTEGER', 'month': 'INTEGER',
  'period_key': 'INTEGER', 'material_code': 'VARCHAR', 'quantity': 'BIGINT'}`;

// foc_ratio as strata's gold step defines it (pipeline/, int_customer_analytics):
// free-of-charge share of all units handed over, 0 when there were none.
const FOC_RATIO = `CASE WHEN COALESCE(s.q, 0) + COALESCE(f.q, 0) > 0
  THEN COALESCE(f.q, 0)::DOUBLE / (COALESCE(s.q, 0) + COALESCE(f.q, 0)) ELSE 0 END`;

const FEATURES = `
CREATE OR REPLACE TABLE features AS
WITH s AS (SELECT customer_id, period_key, SUM(quantity)::BIGINT AS q, COUNT(*) AS n,
                  MEDIAN(quantity)::DOUBLE AS med FROM sales GROUP BY customer_id, period_key),
     f AS (SELECT customer_id, period_key, SUM(quantity)::BIGINT AS q, COUNT(*) AS n,
                  MEDIAN(quantity)::DOUBLE AS med FROM foc GROUP BY customer_id, period_key),
     m AS (SELECT customer_id, period_key, COUNT(DISTINCT material_code) AS u FROM (
             SELECT customer_id, period_key, material_code FROM sales
             UNION ALL SELECT customer_id, period_key, material_code FROM foc)
           GROUP BY customer_id, period_key)
SELECT m.customer_id, m.period_key // 100 AS year, m.period_key % 100 AS month, m.period_key,
       COALESCE(s.q, 0) AS total_sold_quantity, COALESCE(f.q, 0) AS total_foc_quantity,
       ${FOC_RATIO} AS foc_ratio,
       COALESCE(s.n, 0) AS total_sold_transactions, COALESCE(f.n, 0) AS total_foc_transactions,
       s.med AS median_sold_order_size, f.med AS median_foc_order_size, m.u AS unique_materials
FROM m LEFT JOIN s USING (customer_id, period_key) LEFT JOIN f USING (customer_id, period_key)
ORDER BY m.customer_id, m.period_key`;

// int_transactions_unified as strata's gold step defines it (docs/TABLES.md):
// a row per (customer, period, material) with lines in either table, 0 for
// the table without, sorted by customer_id, period_key, material_code
// (bytewise: DuckDB's default collation).
const UNIFIED = `
CREATE OR REPLACE TABLE unified AS
WITH s AS (SELECT customer_id, period_key, material_code, SUM(quantity)::BIGINT AS q, COUNT(*) AS n
           FROM sales GROUP BY customer_id, period_key, material_code),
     f AS (SELECT customer_id, period_key, material_code, SUM(quantity)::BIGINT AS q, COUNT(*) AS n
           FROM foc GROUP BY customer_id, period_key, material_code)
SELECT customer_id, period_key // 100 AS year, period_key % 100 AS month, period_key, material_code,
       COALESCE(s.q, 0) AS sold_qty, COALESCE(f.q, 0) AS foc_qty,
       COALESCE(s.n, 0) AS sold_lines, COALESCE(f.n, 0) AS foc_lines
FROM s FULL OUTER JOIN f USING (customer_id, period_key, material_code)
ORDER BY customer_id, period_key, material_code`;

const UNIFIED_SUMS = `SELECT COUNT(*)::DOUBLE AS rows, SUM(sold_qty)::DOUBLE AS sold_qty,
  SUM(foc_qty)::DOUBLE AS foc_qty, SUM(sold_lines)::DOUBLE AS sold_lines,
  SUM(foc_lines)::DOUBLE AS foc_lines FROM unified`;

const SUMS = `SELECT COUNT(*)::DOUBLE AS rows, SUM(total_sold_quantity)::DOUBLE AS total_sold_quantity,
  SUM(total_foc_quantity)::DOUBLE AS total_foc_quantity, SUM(foc_ratio) AS foc_ratio,
  SUM(total_sold_transactions)::DOUBLE AS total_sold_transactions,
  SUM(total_foc_transactions)::DOUBLE AS total_foc_transactions,
  SUM(median_sold_order_size) AS median_sold_order_size, SUM(median_foc_order_size) AS median_foc_order_size,
  SUM(unique_materials)::DOUBLE AS unique_materials FROM features`;

const now = () => Number(process.hrtime.bigint()) / 1e9;
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run(`SET threads = ${threads}`);
await con.run('SET preserve_insertion_order = false');
// At 100M rows the tables may not fit in memory: let DuckDB spill.
if (args['temp-dir']) await con.run(`SET temp_directory = '${args['temp-dir']}'`);

let t0 = now();
await con.run(`CREATE TABLE sales AS SELECT * FROM read_csv('${args.sales}', header = true, columns = ${COLUMNS})`);
await con.run(`CREATE TABLE foc AS SELECT * FROM read_csv('${args.foc}', header = true, columns = ${COLUMNS})`);
const loadSeconds = now() - t0;
const counts = (await con.runAndReadAll('SELECT (SELECT COUNT(*) FROM sales)::DOUBLE, (SELECT COUNT(*) FROM foc)::DOUBLE')).getRows()[0];

// warm-up: first touch of the tables and of the query's memory; timed, not compared (first_seconds)
t0 = now();
await con.run(FEATURES);
const firstSeconds = now() - t0;
await con.run(UNIFIED);
// seconds: the feature query alone; gold_seconds: both of the gold step's
// tables, the features and the unified rows, one after the other
const seconds = [], goldSeconds = [];
for (let r = 0; r < reps; r++) {
  t0 = now();
  await con.run(FEATURES);
  seconds.push(now() - t0);
  t0 = now();
  await con.run(FEATURES);
  await con.run(UNIFIED);
  goldSeconds.push(now() - t0);
}
const numbers = (o) => {
  for (const k of Object.keys(o)) o[k] = o[k] === null ? 0 : Number(o[k]);
  return o;
};
const sums = numbers((await con.runAndReadAll(SUMS)).getRowObjectsJson()[0]);
const unifiedSums = numbers((await con.runAndReadAll(UNIFIED_SUMS)).getRowObjectsJson()[0]);

const parquet = {};
if (args['parquet-dir']) {
  for (const t of ['sales', 'foc']) {
    const p = join(args['parquet-dir'], `${t}.parquet`);
    t0 = now();
    await con.run(`COPY ${t} TO '${p}' (FORMAT parquet, COMPRESSION zstd)`);
    parquet[t] = { bytes: statSync(p).size, seconds: now() - t0 };
  }
}
const version = (await con.runAndReadAll('SELECT version()')).getRows()[0][0];
console.log(JSON.stringify({
  duckdb_version: version, threads, load_seconds: loadSeconds,
  sales_rows: Number(counts[0]), foc_rows: Number(counts[1]), seconds, first_seconds: firstSeconds,
  gold_seconds: goldSeconds, sums,
  unified_sums: unifiedSums, parquet,
}));
