-- Extra request headers a webhook sends, as a JSON object (sealed when a key is configured).

ALTER TABLE webhooks ADD COLUMN headers TEXT;
