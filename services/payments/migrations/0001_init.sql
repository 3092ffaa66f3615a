-- Payments, their ledger, and the idempotency keys of the commands that
-- changed them. Written in the SQL that SQLite and PostgreSQL both run:
-- TEXT ids (UUID v7) and RFC 3339 times, BIGINT cents, no BOOLEAN.

-- One payment per order. The CHECKs restate the invariant the code keeps,
-- so a bug cannot store a capture above the authorization or a refund
-- above the capture.
CREATE TABLE payments (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL UNIQUE,
    payment_method   TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
        ('authorized', 'declined', 'captured', 'voided', 'refunded', 'partially_refunded')),
    authorized_cents BIGINT NOT NULL CHECK (authorized_cents > 0),
    captured_cents   BIGINT NOT NULL CHECK (captured_cents >= 0 AND captured_cents <= authorized_cents),
    refunded_cents   BIGINT NOT NULL CHECK (refunded_cents >= 0 AND refunded_cents <= captured_cents),
    decline_reason   TEXT,
    -- Bumped by every change: an update names the version it read, so two
    -- concurrent changes cannot both apply (PostgreSQL; SQLite has one
    -- writer anyway).
    version          BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- Append-only: every movement of money (and every decline), once. The
-- idempotency key of the command that caused an entry is unique, so one
-- command can never be recorded twice.
CREATE TABLE ledger_entries (
    id              TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    kind            TEXT NOT NULL CHECK (kind IN ('authorize', 'capture', 'void', 'refund', 'decline')),
    amount_cents    BIGINT NOT NULL CHECK (amount_cents > 0),
    idempotency_key TEXT NOT NULL UNIQUE,
    at              TEXT NOT NULL
);

-- A payment's entries in time order (ids are UUID v7).
CREATE INDEX ledger_entries_by_payment ON ledger_entries (payment_id, id);

-- The first answer to each command, stored in the command's transaction:
-- a repeat with the same key gets it back byte for byte. `request` is the
-- command's canonical form, so a key reused for another request is caught.
CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY,
    request         TEXT NOT NULL,
    response_status BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
