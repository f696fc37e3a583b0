-- Nodes and their heartbeats (SPEC.md §5.6). With SQLite there is one process per file, so
-- this mostly records the previous run's node for crash recovery.
CREATE TABLE nodes (
    node_uuid TEXT PRIMARY KEY NOT NULL,
    last_seen INTEGER NOT NULL
) STRICT;
