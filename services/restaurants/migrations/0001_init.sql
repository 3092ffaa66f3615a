-- The catalog. Written in the SQL that SQLite and PostgreSQL both run: TEXT
-- ids (UUID v7) and RFC 3339 times, BIGINT cents, BOOLEAN flags.
CREATE TABLE restaurants (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    cuisine     TEXT NOT NULL,
    address     TEXT NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lng         DOUBLE PRECISION NOT NULL,
    open        BOOLEAN NOT NULL,
    auto_accept BOOLEAN NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The public list pages through restaurants in (name, id) order.
CREATE INDEX restaurants_by_name ON restaurants (name, id);
-- The cuisine filter is a case-insensitive exact match, in the same order.
CREATE INDEX restaurants_by_cuisine ON restaurants (LOWER(cuisine), name, id);
-- An owner's own restaurants.
CREATE INDEX restaurants_by_owner ON restaurants (owner_id, name, id);

CREATE TABLE menu_items (
    id            TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    price_cents   BIGINT NOT NULL CHECK (price_cents > 0),
    available     BOOLEAN NOT NULL,
    -- Units left; NULL means unlimited.
    stock         BIGINT CHECK (stock >= 0),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- A restaurant's menu, in the order it is shown.
CREATE INDEX menu_items_by_restaurant ON menu_items (restaurant_id, name, id);
