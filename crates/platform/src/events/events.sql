-- The outbox: events written in the same transaction as the change that
-- caused them. `position` is NULL until the relay orders the event into the
-- feed; positions increase without gaps in the order the relay saw commits.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    subject      TEXT,
    event        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    position     BIGINT UNIQUE,
    published_at TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);

-- Every event this service has applied, recorded in the same transaction
-- as its effect: a redelivered event is recognised and skipped.
CREATE TABLE inbox (
    event_id   TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    handled_at TEXT NOT NULL
);

-- How far this service has read each producer's feed.
CREATE TABLE consumer_cursors (
    source     TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Events this service failed to apply after every attempt: parked here so
-- the rest keeps flowing, listed and redriven by an operator.
CREATE TABLE dead_letters (
    event_id    TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    position    BIGINT,
    event       TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    dead_at     TEXT NOT NULL,
    redriven_at TEXT
);
