-- Couriers and their deliveries. Written in the SQL that SQLite and
-- PostgreSQL both run: TEXT ids (UUID v7) and RFC 3339 times, BOOLEAN
-- flags, DOUBLE PRECISION coordinates.

-- A courier, keyed by their user id (the users service owns the account;
-- this row is created by the courier's first `PUT /couriers/me`).
CREATE TABLE couriers (
    courier_id TEXT PRIMARY KEY,
    available  BOOLEAN NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    lng        DOUBLE PRECISION NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One delivery per confirmed order. Pick-up and drop-off are the order's
-- snapshot (taken from `order.confirmed`), so a delivery never needs the
-- orders or restaurants service to be up.
CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL,
    restaurant_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    courier_id   TEXT REFERENCES couriers (courier_id),
    pickup_lat   DOUBLE PRECISION NOT NULL,
    pickup_lng   DOUBLE PRECISION NOT NULL,
    dropoff_lat  DOUBLE PRECISION NOT NULL,
    dropoff_lng  DOUBLE PRECISION NOT NULL,
    eta          TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- A courier holds at most one active delivery. The database keeps this,
-- not only the code: two dispatchers (replicas, or a race in one) that
-- pick the same courier collide here, and the loser tries another courier.
-- A delivered or cancelled delivery keeps its courier_id for history and
-- no longer counts.
CREATE UNIQUE INDEX deliveries_one_active_per_courier
    ON deliveries (courier_id) WHERE status IN ('ASSIGNED', 'PICKED_UP');

-- The dispatcher takes pending deliveries oldest first.
CREATE INDEX deliveries_by_status ON deliveries (status, created_at, id);
-- A courier's own deliveries, newest first.
CREATE INDEX deliveries_by_courier ON deliveries (courier_id, created_at);
