CREATE TABLE plans (
    name                   TEXT PRIMARY KEY,
    monthly_price_nanos    INTEGER NOT NULL,
    included_credits_nanos INTEGER NOT NULL,
    monthly_cap_nanos      INTEGER NOT NULL,
    allowed_models         TEXT,
    rpm                    INTEGER NOT NULL,
    tpm                    INTEGER,
    concurrency            INTEGER,
    updated_at             INTEGER NOT NULL
);

INSERT INTO plans VALUES ('free',      0,            1000000000,   5000000000,    'fast,embed',                                   20,   NULL, NULL, 0);
INSERT INTO plans VALUES ('starter',   10000000000,  12000000000,  50000000000,   'fast,qwen-fast,embed',                         60,   NULL, NULL, 0);
INSERT INTO plans VALUES ('pro',       20000000000,  25000000000,  100000000000,  'fast,qwen-fast,qwen-pro,deepseek-code,embed',  120,  NULL, NULL, 0);
INSERT INTO plans VALUES ('developer', 49000000000,  65000000000,  250000000000,  NULL,                                           300,  NULL, NULL, 0);
INSERT INTO plans VALUES ('team',      199000000000, 275000000000, 1000000000000, NULL,                                           1000, NULL, NULL, 0);

ALTER TABLE accounts ADD COLUMN balance_nanos INTEGER NOT NULL DEFAULT 0;

CREATE TABLE ledger_entries (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    kind                TEXT NOT NULL,
    amount_nanos        INTEGER NOT NULL,
    balance_after_nanos INTEGER NOT NULL,
    reason              TEXT NOT NULL,
    reference           TEXT,
    created_at          INTEGER NOT NULL
);
CREATE INDEX ledger_account_time ON ledger_entries(account_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX ledger_topup_reference ON ledger_entries(reference) WHERE kind = 'topup';
CREATE INDEX usage_events_key_time ON usage_events(key_id, created_at)
