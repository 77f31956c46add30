-- The index behind an account's usage listing, in ascending order: the listing reads it
-- backwards just as fast, and an account's new events now land at the end of its range
-- rather than the front, where every insert split a page in the middle of the B-tree (the
-- usage writer spent about a seventh of its instructions on that).
DROP INDEX IF EXISTS usage_events_account_time;
CREATE INDEX usage_events_account_time ON usage_events(account_id, created_at, id)
