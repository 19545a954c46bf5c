-- What a round achieved, kept when a member is erased (/intro delete, or 30 days after leaving): their rows
-- in match_group_members go, and with them what /rounds stats and /stats count. Kept instead, naming nobody:

-- A delivered group one of whose erased members had answered "We met".
ALTER TABLE match_groups ADD COLUMN met_kept INTEGER NOT NULL DEFAULT 0;

-- The company pairs an erased member's delivered groups bridged, each as a digest of the server and the
-- two company keys (bot/matching/store.py: _bridge), never the keys themselves.
CREATE TABLE match_bridges (
    guild_id INTEGER NOT NULL,
    pair BLOB NOT NULL,
    PRIMARY KEY (guild_id, pair)
) WITHOUT ROWID;
