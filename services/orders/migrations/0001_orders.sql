-- An order and its saga. `saga` is the saga's state as JSON (the pure
-- state machine in domain/saga.rs); `status` and `outstanding` are copies
-- of what it says, kept in columns so the sweeper can find orders with
-- work to do without decoding every row. `version` makes every update a
-- compare-and-set: two writers never both apply an event to one state.
CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL,
    restaurant_id      TEXT NOT NULL,
    status             TEXT NOT NULL,
    saga               TEXT NOT NULL,
    outstanding        INTEGER NOT NULL,
    version            BIGINT NOT NULL,
    request            TEXT NOT NULL,
    items              TEXT NOT NULL,
    pickup_lat         DOUBLE PRECISION,
    pickup_lng         DOUBLE PRECISION,
    accept_by          TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_with_work ON orders (outstanding, status);

-- Every status an order went through, in order.
CREATE TABLE order_timeline (
    order_id TEXT NOT NULL REFERENCES orders (id),
    seq      INTEGER NOT NULL,
    status   TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- POST /orders idempotency: one row per (customer, key), with the request's
-- fingerprint and the answer given, replayed for a repeat.
CREATE TABLE idempotency_keys (
    customer_id   TEXT NOT NULL,
    key           TEXT NOT NULL,
    request       TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    response_code INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (customer_id, key)
);
