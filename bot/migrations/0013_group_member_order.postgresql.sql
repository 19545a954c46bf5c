-- The order of a group's members, as the plan listed them (see 0013_group_member_order.sql).
ALTER TABLE match_group_members ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
