-- How a round's groups reach their members (bot/matching/delivery.py): a private thread, or direct messages
-- when the server's threads are at Discord's cap; who was reached and, if not, why.

-- The way chosen when the round's delivery began (NULL: not chosen yet, or a group stored before this
-- migration, which goes by thread); its state; why it ended without an introduction; when it was introduced.
ALTER TABLE match_groups ADD COLUMN way TEXT CHECK (way IN ('thread', 'dm'));
ALTER TABLE match_groups ADD COLUMN state TEXT NOT NULL DEFAULT 'planned'
    CHECK (state IN ('planned', 'delivered', 'cancelled'));
ALTER TABLE match_groups ADD COLUMN ended TEXT CHECK (ended IN ('left', 'unreached'));
ALTER TABLE match_groups ADD COLUMN delivered_at TEXT;
-- Groups whose thread job is done were introduced in their thread; those whose job is still to run (or to
-- retry) stay planned and their job finishes them; groups left without a thread and without a job (their
-- members had left) were never introduced.
UPDATE match_groups SET state = 'delivered', way = 'thread'
WHERE thread_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM outbox WHERE outbox.dedupe_key = 'matching.thread:' || match_groups.id AND outbox.state <> 'done');
UPDATE match_groups SET state = 'cancelled', ended = 'left'
WHERE state = 'planned' AND NOT EXISTS (
    SELECT 1 FROM outbox WHERE outbox.dedupe_key = 'matching.thread:' || match_groups.id AND outbox.state <> 'done');
CREATE INDEX match_groups_state ON match_groups (round_id, state);

-- Each member's delivery: reached in the thread or by DM; or not, and why ('left', 'dms_closed', 'no_access').
ALTER TABLE match_group_members ADD COLUMN reached TEXT CHECK (reached IN ('thread', 'dm'));
ALTER TABLE match_group_members ADD COLUMN unreached TEXT CHECK (unreached IN ('left', 'dms_closed', 'no_access'));
UPDATE match_group_members SET reached = 'thread'
WHERE group_id IN (SELECT id FROM match_groups WHERE state = 'delivered');

-- The round's delivery: threads it could start when it began (NULL: not begun), threads it may still start
-- beyond the groups it gave one (a group nobody could reach by DM), when the last group was done.
ALTER TABLE match_rounds ADD COLUMN thread_room INTEGER;
ALTER TABLE match_rounds ADD COLUMN spare_threads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE match_rounds ADD COLUMN delivery_started_at TEXT;
ALTER TABLE match_rounds ADD COLUMN delivered_at TEXT;
-- Rounds stored before: their delivery began with their thread jobs.
UPDATE match_rounds SET delivery_started_at = created_at;
UPDATE match_rounds SET delivered_at = created_at
WHERE NOT EXISTS (SELECT 1 FROM match_groups AS g WHERE g.round_id = match_rounds.id AND g.state = 'planned');

-- When a DM to the member was last refused (50007): their groups get threads first.
ALTER TABLE match_members ADD COLUMN dms_closed_at TEXT;
