CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_lower   TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    plan          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_keys (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    name                TEXT NOT NULL,
    prefix              TEXT NOT NULL,
    hash                TEXT NOT NULL UNIQUE,
    disabled            BIGINT NOT NULL DEFAULT 0,
    monthly_limit_nanos BIGINT,
    allowed_models      TEXT,
    expires_at          BIGINT,
    rpm_limit           BIGINT,
    tpm_limit           BIGINT,
    concurrency_limit   BIGINT,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT,
    deleted_at          BIGINT
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
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    cached_tokens  BIGINT NOT NULL,
    cost_nanos     BIGINT NOT NULL,
    estimated      BIGINT NOT NULL,
    latency_ms     BIGINT NOT NULL,
    status         TEXT NOT NULL,
    http_status    BIGINT NOT NULL,
    error_code     TEXT,
    request_id     TEXT NOT NULL,
    stream         BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX usage_events_account_time ON usage_events(account_id, created_at DESC, id DESC);
