-- Lockstep's schema. Times are milliseconds since the Unix epoch; flags are 0 or 1;
-- JSON is stored as text. The PostgreSQL schema mirrors this one column for column.

CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    steps       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    secret           TEXT,
    events           TEXT NOT NULL,
    instances        TEXT,
    enabled          BIGINT NOT NULL,
    disabled_reason  TEXT,
    disabled_at      BIGINT,
    timeout_seconds  BIGINT NOT NULL,
    retry_schedule   TEXT,
    description      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE log_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id  TEXT,
    parent_id   BIGINT REFERENCES log_entries (id),
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    actor       TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX log_entries_parent ON log_entries (parent_id);
CREATE INDEX log_entries_release ON log_entries (release_id);

CREATE TABLE releases (
    id              TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    tag             TEXT NOT NULL,
    zero_downtime   BIGINT NOT NULL,
    stage           TEXT NOT NULL,
    parent_log      BIGINT NOT NULL REFERENCES log_entries (id),
    step_index      BIGINT NOT NULL DEFAULT 0,
    failure_reason  TEXT,
    stage_since     BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX releases_instance_stage ON releases (instance_id, stage, parent_log);

CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,
    release_id          TEXT REFERENCES releases (id),
    webhook_id          TEXT NOT NULL,
    event               TEXT NOT NULL,
    locking             BIGINT NOT NULL,
    body                BLOB NOT NULL,
    url                 TEXT NOT NULL,
    timeout_seconds     BIGINT NOT NULL,
    status              TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    first_attempt_done  BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT,
    claimed_by          TEXT,
    claim_until         BIGINT,
    log_entry           BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_release ON deliveries (release_id, event);

CREATE TABLE attempts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id         TEXT NOT NULL REFERENCES deliveries (id),
    number              BIGINT NOT NULL,
    started_at          BIGINT NOT NULL,
    duration_ms         BIGINT NOT NULL,
    status_code         BIGINT,
    error_kind          TEXT,
    error               TEXT,
    location            TEXT,
    response_body       TEXT,
    response_truncated  BIGINT NOT NULL,
    UNIQUE (delivery_id, number)
);

CREATE TABLE locks (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    release_id   TEXT NOT NULL REFERENCES releases (id),
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id),
    event        TEXT NOT NULL,
    status       TEXT NOT NULL,
    outcome      TEXT,
    message      TEXT,
    released_by  TEXT,
    released_at  BIGINT,
    log_entry    BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX locks_release ON locks (release_id, status);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
