ALTER TABLE accounts ADD COLUMN balance_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE changes (
    id           TEXT PRIMARY KEY,
    origin       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    account_id   TEXT,
    key_hash     TEXT,
    amount_nanos BIGINT,
    version      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX changes_time ON changes(created_at)
