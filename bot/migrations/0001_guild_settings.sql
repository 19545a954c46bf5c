-- Settings of one server. A row appears on the first change; until then the
-- defaults in bot/guilds/model.py apply.
CREATE TABLE guild_settings (
    guild_id   INTEGER PRIMARY KEY,
    language   TEXT CHECK (language IN ('en', 'ja')),
    timezone   TEXT,
    updated_at TEXT NOT NULL
);

-- The channel a server uses for each purpose (prompts, introductions, …).
CREATE TABLE guild_channels (
    guild_id   INTEGER NOT NULL REFERENCES guild_settings (guild_id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (guild_id, purpose)
);
