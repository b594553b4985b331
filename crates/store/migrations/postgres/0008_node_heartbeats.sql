-- Gates look locks up by delivery; nodes keep one heartbeat row each, so a node's lease on
-- all the releases it owns is renewed by one small write.

CREATE INDEX locks_delivery ON locks (delivery_id);

CREATE TABLE nodes (
    id               TEXT PRIMARY KEY,
    heartbeat_until  BIGINT NOT NULL
);
