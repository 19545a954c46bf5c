-- A large server's suggestion index as the round worker last built it (bot/matching/snapshots.py), so that a
-- restart loads it in a fraction of a second instead of reading every profile again; the members whose data
-- changed since `as_of` are read afresh on loading. `format` names the code that wrote it: a snapshot of other
-- code is never read. Deleted with any member's erasure (MatchStore.forget): it holds every member's columns.
CREATE TABLE suggestion_snapshots (
    guild_id INTEGER PRIMARY KEY,
    format TEXT NOT NULL,
    as_of TEXT NOT NULL,                    -- the moment the build began reading
    members INTEGER NOT NULL,
    aliases TEXT NOT NULL,                  -- the company aliases it was built with, as JSON
    data BLOB NOT NULL
);
