-- Who changed which setting of a server, from what to what, and when.
CREATE TABLE config_audit (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    setting    TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    changed_at TEXT    NOT NULL
);

CREATE INDEX config_audit_by_guild ON config_audit (guild_id, changed_at);
