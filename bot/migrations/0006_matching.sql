-- Matching (bot/matching): who takes part in rounds, private avoid lists, intro requests, rounds,
-- their groups and follow-ups. Every row that names a member is erased with them (/intro delete).

-- A member's part in matching. No row: never joined rounds, not paused.
CREATE TABLE match_members (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    joined INTEGER NOT NULL DEFAULT 0,      -- takes part in match rounds (/match join)
    paused_until TEXT,                      -- neither suggested nor matched before then (/match pause)
    auto_paused INTEGER NOT NULL DEFAULT 0, -- paused after three unanswered follow-ups, until /match join
    joined_at TEXT,                         -- the last /match join: unanswered follow-ups count from then
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Companies a member does not want to be matched with: private, shown to nobody else.
CREATE TABLE match_avoid (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    company_key TEXT NOT NULL,              -- bot/intros/companies.py, aliases applied when compared
    company TEXT NOT NULL,                  -- as the member typed it
    created_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id, company_key)
);

-- Double opt-in introductions a member asked for.
CREATE TABLE match_requests (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    requester_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'accepted', 'declined', 'expired')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    answered_at TEXT,
    channel_id INTEGER,                     -- where the request was delivered (a DM, or a private thread)
    message_id INTEGER,                     -- the message with Accept / Decline
    thread_id INTEGER                       -- the private thread of an accepted request
);
CREATE INDEX match_requests_requester ON match_requests (guild_id, requester_id, state);
CREATE INDEX match_requests_target ON match_requests (guild_id, target_id, state);

-- Each server's round schedule and matching settings.
CREATE TABLE match_settings (
    guild_id INTEGER PRIMARY KEY,
    enabled INTEGER NOT NULL DEFAULT 0,
    cadence TEXT NOT NULL DEFAULT 'weekly' CHECK (cadence IN ('weekly', 'biweekly', 'monthly')),
    weekday INTEGER NOT NULL DEFAULT 0 CHECK (weekday BETWEEN 0 AND 6),
    at TEXT NOT NULL DEFAULT '10:00',
    no_repeat_rounds INTEGER NOT NULL DEFAULT 6,
    follow_up_days INTEGER NOT NULL DEFAULT 5,
    last_slot TEXT,                         -- the latest slot a round was made for (or skipped when switched on)
    updated_at TEXT NOT NULL
);

-- A round: stored with its groups in one transaction before anyone is contacted.
CREATE TABLE match_rounds (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    slot TEXT NOT NULL,                     -- the scheduled time it was made for, or when an admin ran it
    created_at TEXT NOT NULL,
    members INTEGER NOT NULL,               -- how many took part
    total REAL NOT NULL,
    bound REAL NOT NULL,
    UNIQUE (guild_id, slot)
);

CREATE TABLE match_groups (
    id INTEGER PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES match_rounds (id),
    guild_id INTEGER NOT NULL,
    score REAL NOT NULL,
    channel_id INTEGER,                     -- the matches channel its thread was started in
    thread_id INTEGER,                      -- set right after Discord created it
    followed_up_at TEXT                     -- when "We met / Not yet / Skip" was posted
);
CREATE INDEX match_groups_round ON match_groups (round_id);

CREATE TABLE match_group_members (
    group_id INTEGER NOT NULL REFERENCES match_groups (id),
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    company_key TEXT NOT NULL,              -- at the time of the round, for "companies bridged"
    answer TEXT CHECK (answer IN ('met', 'not_yet', 'skip')),
    answered_at TEXT,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX match_group_members_user ON match_group_members (guild_id, user_id);
