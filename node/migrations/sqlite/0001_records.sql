-- One row per record of any dataset of this node. `body` is the record as JSON
-- (field -> typed value), exactly as validated on import.
CREATE TABLE records (
    dataset       TEXT NOT NULL,
    record_key    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          TEXT NOT NULL,
    repaired_at   TEXT,
    repair_reason TEXT,
    PRIMARY KEY (dataset, record_key)
) WITHOUT ROWID;

CREATE INDEX records_by_subject ON records (subject, dataset);
