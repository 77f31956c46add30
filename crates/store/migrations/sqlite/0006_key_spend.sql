-- Each key's spend per calendar month (UTC), kept by the usage writer once per batch and
-- key. A key's monthly budget is checked against it, so usage_events no longer needs an
-- index on key_id (a B-tree insert per event).
CREATE TABLE key_spend (
    key_id      TEXT NOT NULL REFERENCES api_keys(id),
    month_start INTEGER NOT NULL,
    spent_nanos INTEGER NOT NULL,
    PRIMARY KEY (key_id, month_start)
) WITHOUT ROWID;
INSERT INTO key_spend (key_id, month_start, spent_nanos)
    SELECT key_id,
           CAST(strftime('%s', created_at / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000,
           SUM(cost_nanos)
    FROM usage_events WHERE cost_nanos > 0 GROUP BY 1, 2;
DROP INDEX IF EXISTS usage_events_key_time
