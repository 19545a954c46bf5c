-- The outbox takes due jobs server by server (bot/outbox/runner.py): a server's earliest due job, and the
-- servers with due work, are read from this index instead of scanning every other server's due jobs.
CREATE INDEX outbox_guild_due ON outbox (state, guild_id, due_at);
