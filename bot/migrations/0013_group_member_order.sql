-- The order of a group's members, as the plan listed them (who is named first in the introduction). It was
-- SQLite's rowid, which PostgreSQL has not: now a column of its own, the same on both
-- (0013_group_member_order.postgresql.sql adds it there, where no row predates it).
ALTER TABLE match_group_members ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
UPDATE match_group_members SET position = rowid;
