-- Jobs claimed with a lease (bot/outbox): the owner (host and process) renews lease_until while the job runs;
-- a job still 'running' after its lease ran out belongs to a process that died, and the process that owns the
-- job's server takes it again. Times are the processes' real clocks (UTC text, as every time here).
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
CREATE INDEX outbox_leases ON outbox (state, lease_until);
