-- sqlite_features.sql: the gold features (int_customer_analytics) as one
-- query in the sqlite3 CLI straight over the source tables, the way a user
-- without strata might compute them. The WHERE clauses apply strata's
-- default validation (docs/TABLES.md reject reasons) so the same rows
-- count. SQLite has no MEDIAN: it is the mean of the middle one or two
-- values by ROW_NUMBER. Prints: groups|sum sold|sum foc|sum foc_ratio|
-- sum sold lines|sum foc lines|sum median sold|sum median foc|sum unique.
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -1000000;
CREATE TEMP TABLE features AS
WITH s AS (SELECT customer_id AS c, year * 100 + month AS p, material_code AS m, quantity AS q FROM sales_qty
           WHERE typeof(customer_id) = 'integer' AND typeof(year) = 'integer' AND year BETWEEN 1990 AND 2100
             AND typeof(month) = 'integer' AND month BETWEEN 1 AND 12 AND typeof(material_code) = 'text'
             AND material_code <> '' AND typeof(quantity) = 'integer' AND quantity BETWEEN 0 AND 1000000000),
     f AS (SELECT customer_id AS c, year * 100 + month AS p, material_code AS m, quantity_foc AS q FROM foc_qty
           WHERE typeof(customer_id) = 'integer' AND typeof(year) = 'integer' AND year BETWEEN 1990 AND 2100
             AND typeof(month) = 'integer' AND month BETWEEN 1 AND 12 AND typeof(material_code) = 'text'
             AND material_code <> '' AND typeof(quantity_foc) = 'integer' AND quantity_foc BETWEEN 0 AND 1000000000),
     sr AS (SELECT c, p, q, ROW_NUMBER() OVER (PARTITION BY c, p ORDER BY q) AS rn,
                   COUNT(*) OVER (PARTITION BY c, p) AS cnt FROM s),
     fr AS (SELECT c, p, q, ROW_NUMBER() OVER (PARTITION BY c, p ORDER BY q) AS rn,
                   COUNT(*) OVER (PARTITION BY c, p) AS cnt FROM f),
     sa AS (SELECT c, p, SUM(q) AS q, COUNT(*) AS n,
                   AVG(CASE WHEN rn IN ((cnt + 1) / 2, (cnt + 2) / 2) THEN q END) AS med FROM sr GROUP BY c, p),
     fa AS (SELECT c, p, SUM(q) AS q, COUNT(*) AS n,
                   AVG(CASE WHEN rn IN ((cnt + 1) / 2, (cnt + 2) / 2) THEN q END) AS med FROM fr GROUP BY c, p),
     u AS (SELECT c, p, COUNT(DISTINCT m) AS u FROM (SELECT c, p, m FROM s UNION ALL SELECT c, p, m FROM f)
           GROUP BY c, p)
SELECT u.c AS customer_id, u.p AS period_key,
       COALESCE(sa.q, 0) AS total_sold_quantity, COALESCE(fa.q, 0) AS total_foc_quantity,
       CASE WHEN COALESCE(sa.q, 0) + COALESCE(fa.q, 0) > 0
            THEN CAST(COALESCE(fa.q, 0) AS REAL) / (COALESCE(sa.q, 0) + COALESCE(fa.q, 0)) ELSE 0 END AS foc_ratio,
       COALESCE(sa.n, 0) AS total_sold_transactions, COALESCE(fa.n, 0) AS total_foc_transactions,
       sa.med AS median_sold_order_size, fa.med AS median_foc_order_size, u.u AS unique_materials
FROM u LEFT JOIN sa ON sa.c = u.c AND sa.p = u.p LEFT JOIN fa ON fa.c = u.c AND fa.p = u.p
ORDER BY u.c, u.p;
SELECT COUNT(*), SUM(total_sold_quantity), SUM(total_foc_quantity), SUM(foc_ratio), SUM(total_sold_transactions),
       SUM(total_foc_transactions), SUM(median_sold_order_size), SUM(median_foc_order_size), SUM(unique_materials)
FROM features;
