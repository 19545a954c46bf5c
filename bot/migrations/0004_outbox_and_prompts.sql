-- Due work (bot/outbox): one row a job, claimed by one owner at a time.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    guild_id INTEGER NOT NULL,
    -- Unique per job: enqueuing the same work twice is a no-op.
    dedupe_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done')),
    due_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Why the last attempt failed, as a message key and its parameters (JSON), for admins.
    last_error TEXT,
    claimed_by TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_guild ON outbox (guild_id, kind, state);

-- Prompts an admin added with /prompts add.
CREATE TABLE prompt_custom (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    questions TEXT NOT NULL,  -- JSON list of strings
    author_id INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX prompt_custom_guild ON prompt_custom (guild_id);

-- Each server's queue: bundled essays ("essay:<slug>") and custom prompts ("custom:<id>").
-- A prompt is due in the current cycle while last_cycle < the server's cycle.
CREATE TABLE prompt_queue (
    guild_id INTEGER NOT NULL,
    prompt_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    last_cycle INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, prompt_key)
);

-- Each server's cycle counter and prompt schedule.
CREATE TABLE prompt_schedule (
    guild_id INTEGER PRIMARY KEY,
    cycle INTEGER NOT NULL DEFAULT 1,
    weekday INTEGER NOT NULL DEFAULT 0 CHECK (weekday BETWEEN 0 AND 6),  -- Monday = 0
    at_time TEXT NOT NULL DEFAULT '09:00',
    enabled INTEGER NOT NULL DEFAULT 0,
    -- The latest slot already turned into a post (UTC); slots up to it are never posted again.
    last_slot TEXT,
    updated_at TEXT NOT NULL
);

-- Every prompt post, from the intent (recorded before anything is sent) to the finished thread.
CREATE TABLE prompt_posts (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    prompt_key TEXT NOT NULL,
    title TEXT NOT NULL,           -- the title when posted, for stats even if the prompt changes
    slot TEXT,                     -- the scheduled slot it was posted for; NULL when posted by hand
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'posted')),
    language TEXT,                 -- chosen at the first attempt, so a retry renders the same text
    channel_id INTEGER,            -- where the first attempt sent (or is about to send) it
    message_id INTEGER,            -- the first message (in a forum: the post's starter message)
    thread_id INTEGER,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    posted_at TEXT,
    replies INTEGER NOT NULL DEFAULT 0,
    participants INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX prompt_posts_slot ON prompt_posts (guild_id, slot);
CREATE INDEX prompt_posts_thread ON prompt_posts (thread_id);
CREATE INDEX prompt_posts_guild ON prompt_posts (guild_id, state);

-- Who replied in a prompt's thread: only to count distinct participants (and, later, to suggest
-- people who discussed the same prompt). Deleted with the member's data.
CREATE TABLE prompt_participants (
    post_id INTEGER NOT NULL REFERENCES prompt_posts (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
