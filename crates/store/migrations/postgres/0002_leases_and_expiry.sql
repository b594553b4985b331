-- Release ownership for several nodes, endpoint health, and lock expiry.

ALTER TABLE releases ADD COLUMN owner TEXT;
ALTER TABLE releases ADD COLUMN owner_until BIGINT;

ALTER TABLE webhooks ADD COLUMN failing_since BIGINT;
ALTER TABLE webhooks ADD COLUMN lock_timeout_seconds BIGINT;
ALTER TABLE webhooks ADD COLUMN lock_default_outcome TEXT;

ALTER TABLE locks ADD COLUMN webhook_id TEXT;
ALTER TABLE locks ADD COLUMN expires_at BIGINT;

CREATE INDEX locks_expiry ON locks (status, expires_at);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, status, created_at);
