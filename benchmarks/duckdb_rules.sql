-- The privacy profile's rules in DuckDB SQL (run by benchmarks/duckdb_rules.py).
-- {landing_customer}, {landing_accelerometer}, {landing_step_trainer}: globs of landing JSON
-- lines; {out}: the lake root the five Parquet tables are written under.
-- Landing columns are typed as in sql/*.sql (no inference), like the Spark runs.

CREATE TEMP TABLE customer_trusted AS
SELECT * EXCLUDE (recency)
FROM (
    SELECT
        *,
        -- Latest record per e-mail; on a tie the record without research consent wins.
        row_number() OVER (
            PARTITION BY email
            ORDER BY lastUpdateDate DESC NULLS LAST, shareWithResearchAsOfDate ASC NULLS FIRST
        ) AS recency
    FROM read_json(
        '{landing_customer}',
        format = 'newline_delimited',
        columns = {
            customerName: 'VARCHAR', email: 'VARCHAR', phone: 'VARCHAR', birthDay: 'VARCHAR',
            serialNumber: 'VARCHAR', registrationDate: 'BIGINT', lastUpdateDate: 'BIGINT',
            shareWithResearchAsOfDate: 'BIGINT', shareWithPublicAsOfDate: 'BIGINT',
            shareWithFriendsAsOfDate: 'BIGINT'
        }
    )
    WHERE email IS NOT NULL
)
WHERE recency = 1 AND shareWithResearchAsOfDate IS NOT NULL;

-- Exact duplicates once; readings of consenting e-mails taken at or after their consent.
CREATE TEMP TABLE accelerometer_trusted AS
SELECT a.user, a.timestamp, a.x, a.y, a.z
FROM (
    SELECT DISTINCT user, timestamp, x, y, z
    FROM read_json(
        '{landing_accelerometer}',
        format = 'newline_delimited',
        columns = {user: 'VARCHAR', timestamp: 'BIGINT', x: 'DOUBLE', y: 'DOUBLE', z: 'DOUBLE'}
    )
    WHERE user IS NOT NULL AND timestamp IS NOT NULL
) AS a
JOIN customer_trusted AS c ON a.user = c.email
WHERE a.timestamp >= c.shareWithResearchAsOfDate;

-- Consenting customers with a trusted reading, minus those whose serial number is held by
-- more than one of them (an anti join, not NOT IN: a NULL serial must not empty the table).
CREATE TEMP TABLE customers_curated AS
WITH with_readings AS (
    SELECT * FROM customer_trusted AS c
    WHERE EXISTS (SELECT 1 FROM accelerometer_trusted AS a WHERE a.user = c.email)
),
ambiguous AS (
    SELECT serialNumber FROM with_readings
    GROUP BY serialNumber
    HAVING count(DISTINCT email) > 1
)
SELECT * FROM with_readings AS w
WHERE NOT EXISTS (SELECT 1 FROM ambiguous AS s WHERE s.serialNumber = w.serialNumber);

-- Exact duplicates once; readings of curated serials taken at or after the owner's consent.
CREATE TEMP TABLE step_trainer_trusted AS
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject
FROM (
    SELECT DISTINCT sensorReadingTime, serialNumber, distanceFromObject
    FROM read_json(
        '{landing_step_trainer}',
        format = 'newline_delimited',
        columns = {
            sensorReadingTime: 'BIGINT', serialNumber: 'VARCHAR', distanceFromObject: 'INTEGER'
        }
    )
    WHERE sensorReadingTime IS NOT NULL AND serialNumber IS NOT NULL
) AS s
JOIN customers_curated AS c ON s.serialNumber = c.serialNumber
WHERE s.sensorReadingTime >= c.shareWithResearchAsOfDate;

-- A customer's own Step Trainer and phone readings at the same millisecond, no identifiers.
CREATE TEMP TABLE machine_learning_curated AS
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.x, a.y, a.z
FROM step_trainer_trusted AS s
JOIN customers_curated AS c ON s.serialNumber = c.serialNumber
JOIN accelerometer_trusted AS a
    ON a.user = c.email AND a.timestamp = s.sensorReadingTime;

COPY customer_trusted TO '{out}/customer/trusted/part-0.parquet' (FORMAT parquet);
COPY accelerometer_trusted TO '{out}/accelerometer/trusted/part-0.parquet' (FORMAT parquet);
COPY customers_curated TO '{out}/customer/curated/part-0.parquet' (FORMAT parquet);
COPY step_trainer_trusted TO '{out}/step_trainer/trusted/part-0.parquet' (FORMAT parquet);
COPY machine_learning_curated TO '{out}/machine_learning/curated/part-0.parquet' (FORMAT parquet);
