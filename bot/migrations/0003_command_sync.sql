-- A hash of the application commands last sent to Discord, per scope
-- ("global:<application id>" or "guild:<application id>:<guild id>"), so the
-- bot syncs only when its command tree changed.
CREATE TABLE command_sync (
    scope        TEXT PRIMARY KEY,
    payload_hash TEXT NOT NULL,
    synced_at    TEXT NOT NULL
);
