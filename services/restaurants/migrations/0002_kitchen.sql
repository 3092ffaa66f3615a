-- Stock held for an order, with the priced lines (the order's snapshot).
-- `request` is the reservation request as received, so a repeated call
-- can be told from a different one under the same order id.
CREATE TABLE reservations (
    order_id       TEXT PRIMARY KEY,
    restaurant_id  TEXT NOT NULL REFERENCES restaurants (id),
    request        TEXT NOT NULL,
    items          TEXT NOT NULL,
    subtotal_cents BIGINT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- The kitchen's view of an order. One per order.
CREATE TABLE tickets (
    order_id         TEXT PRIMARY KEY REFERENCES reservations (order_id),
    restaurant_id    TEXT NOT NULL REFERENCES restaurants (id),
    status           TEXT NOT NULL,
    accept_by        TEXT NOT NULL,
    rejection_reason TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- An owner's ticket list, newest first, optionally by status.
CREATE INDEX tickets_by_restaurant ON tickets (restaurant_id, status, created_at);
