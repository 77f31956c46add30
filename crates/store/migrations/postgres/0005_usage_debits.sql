-- A batch of usage events is debited once per account and month: each event names the
-- ledger entry that paid for it (NULL when it cost nothing, and on events written before).
ALTER TABLE usage_events ADD COLUMN ledger_entry_id TEXT;
