-- Whether a delivery's first attempt ended is `attempts > 0`, and a release's lease is its
-- owner's heartbeat: neither needs a column of its own.

ALTER TABLE deliveries DROP COLUMN first_attempt_done;
ALTER TABLE releases DROP COLUMN owner_until;
