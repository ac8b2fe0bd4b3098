-- Turn the timestamp columns that target-postgres 0.8.1 creates into
-- `timestamp with time zone`, once, after the first load:
--
--   psql -h 127.0.0.1 -U postgres -d test -f scripts/postgres_timestamptz.sql
--   PGOPTIONS='-c tap_hotjar.schema=my_schema' psql ... -f scripts/postgres_timestamptz.sql
--
-- target-postgres maps JSON Schema date-time to `timestamp without time zone`
-- and has no setting to change that. The values it writes are UTC (the tap
-- emits created_time as +00:00; the _sdc_* columns are UTC too), so the
-- conversion reads them AT TIME ZONE 'UTC' and no instant moves. Later loads
-- keep the new type: target-postgres only widens a column when the existing
-- type cannot hold the new values, and timestamptz can.
-- Idempotent: columns that already have a time zone are left alone.
DO $$
DECLARE
    target_schema text := coalesce(nullif(current_setting('tap_hotjar.schema', true), ''), 'hotjar');
    col record;
BEGIN
    FOR col IN
        SELECT c.table_name, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = target_schema
          AND t.table_type = 'BASE TABLE'
          AND c.data_type = 'timestamp without time zone'
        ORDER BY c.table_name, c.ordinal_position
    LOOP
        EXECUTE format(
            'ALTER TABLE %I.%I ALTER COLUMN %I TYPE timestamp with time zone USING %I AT TIME ZONE ''UTC''',
            target_schema, col.table_name, col.column_name, col.column_name
        );
        RAISE NOTICE '%.%: timestamp with time zone', col.table_name, col.column_name;
    END LOOP;
END
$$;
