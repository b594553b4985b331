-- Facts about the database itself, such as the check value of its encryption key.

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
