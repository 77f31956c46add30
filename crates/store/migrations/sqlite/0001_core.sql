CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_lower   TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    plan          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_keys (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    name                TEXT NOT NULL,
    prefix              TEXT NOT NULL,
    hash                TEXT NOT NULL UNIQUE,
    disabled            INTEGER NOT NULL DEFAULT 0,
    monthly_limit_nanos INTEGER,
    allowed_models      TEXT,
    expires_at          INTEGER,
    rpm_limit           INTEGER,
    tpm_limit           INTEGER,
    concurrency_limit   INTEGER,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER,
    deleted_at          INTEGER
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE usage_events (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    key_id         TEXT NOT NULL REFERENCES api_keys(id),
    endpoint       TEXT NOT NULL,
    public_model   TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    provider       TEXT NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cached_tokens  INTEGER NOT NULL,
    cost_nanos     INTEGER NOT NULL,
    estimated      INTEGER NOT NULL,
    latency_ms     INTEGER NOT NULL,
    status         TEXT NOT NULL,
    http_status    INTEGER NOT NULL,
    error_code     TEXT,
    request_id     TEXT NOT NULL,
    stream         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX usage_events_account_time ON usage_events(account_id, created_at DESC, id DESC);
