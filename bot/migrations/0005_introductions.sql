-- Introductions (bot/intros): profiles, who has introduced themselves, welcomes and reminders.

-- A member's profile in one server. Deleted with everything else about the member by
-- /intro delete, and 30 days (a setting) after they left the server.
CREATE TABLE intro_profiles (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    company TEXT NOT NULL,
    company_key TEXT NOT NULL,          -- bot/intros/companies.py; aliases are applied when reading
    role TEXT NOT NULL DEFAULT '',
    industry TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    timezone TEXT,                      -- IANA name
    languages TEXT NOT NULL,            -- JSON list of 'ja', 'en', 'other'
    interests TEXT NOT NULL DEFAULT '[]', -- JSON list of normalised tags
    offer TEXT NOT NULL DEFAULT '',
    seek TEXT NOT NULL DEFAULT '',
    bio TEXT NOT NULL DEFAULT '',
    company_visibility TEXT NOT NULL DEFAULT 'everyone' CHECK (company_visibility IN ('everyone', 'matches')),
    open_to_intros INTEGER NOT NULL DEFAULT 1,
    active INTEGER NOT NULL DEFAULT 1,  -- 0 once the member left the server
    card_channel_id INTEGER,            -- the card posted in the introductions channel, edited on changes
    card_message_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX intro_profiles_company ON intro_profiles (guild_id, company_key);

-- What the bot knows of a member's time in a server: when they joined (as the bot saw it), whether
-- and where they introduced themselves, whether they were nudged, when they left.
CREATE TABLE intro_members (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    joined_at TEXT,                     -- NULL: joined before the bot was watching (never nudged)
    left_at TEXT,
    introduced_at TEXT,
    intro_channel_id INTEGER,           -- the message in the introductions channel that counted
    intro_message_id INTEGER,
    nudged_at TEXT,                     -- the one reminder, once
    draft TEXT,                         -- JSON: what the parser found in their message, to pre-fill the modal
    offered_at TEXT,                    -- when "Make this my profile" was offered, once
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX intro_members_due ON intro_members (guild_id, introduced_at, nudged_at);
CREATE INDEX intro_members_left ON intro_members (left_at);

-- Each server's welcome and reminder settings.
CREATE TABLE intro_settings (
    guild_id INTEGER PRIMARY KEY,
    welcome TEXT NOT NULL DEFAULT 'channel' CHECK (welcome IN ('channel', 'dm', 'off')),
    reminders_enabled INTEGER NOT NULL DEFAULT 0,
    reminder_days INTEGER NOT NULL DEFAULT 3 CHECK (reminder_days BETWEEN 1 AND 90),
    updated_at TEXT NOT NULL
);

-- Admin-defined names of one company: alias key -> company key (both folded).
CREATE TABLE company_aliases (
    guild_id INTEGER NOT NULL,
    alias_key TEXT NOT NULL,
    company_key TEXT NOT NULL,
    alias TEXT NOT NULL,                -- as the admin typed them, for /config show
    company TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, alias_key)
);

-- Jobs that concern one member (welcome, reminder, a reply to delete), so their data can be erased.
ALTER TABLE outbox ADD COLUMN member_id INTEGER;
CREATE INDEX outbox_member ON outbox (guild_id, member_id);
