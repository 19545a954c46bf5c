-- The language of each member's Discord client, as their last interaction in the server gave it ('en' or 'ja';
-- no row: unknown, or a language the bot does not speak), for what the bot sends them alone: DMs, and a request
-- delivered in a private thread. Erased with the member (bot/guilds/store.py: forget_actor).
CREATE TABLE member_languages (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    language TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;
