-- Every deployment a request tried, as a JSON array of {deployment, outcome, latency_ms}.
ALTER TABLE usage_events ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';
