-- Each webhook's Standard Webhooks signing key (sealed when a key is configured), and the
-- key it replaced, which keeps signing until its overlap ends.

ALTER TABLE webhooks ADD COLUMN signing_key TEXT;
ALTER TABLE webhooks ADD COLUMN previous_signing_key TEXT;
ALTER TABLE webhooks ADD COLUMN previous_key_until BIGINT;
