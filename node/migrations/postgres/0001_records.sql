-- One row per record of any dataset of this node: the same logical schema as the SQLite
-- store (migrations/sqlite/0001_records.sql). `body` is the record as JSON (field -> typed
-- value), exactly as validated on import.
CREATE TABLE records (
    dataset       TEXT NOT NULL,
    record_key    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          JSONB NOT NULL,
    repaired_at   TIMESTAMPTZ,
    repair_reason TEXT,
    PRIMARY KEY (dataset, record_key)
);

CREATE INDEX records_by_subject ON records (subject, dataset);
