-- The relay's two questions, answered from small indexes instead of a walk
-- over every event the service ever wrote (the outbox is also the feed, so
-- it only grows): "which events are ordered but not yet published?" and
-- "how many are waiting, since when?". Only unpublished events are in the
-- index, so both cost what is waiting, not what is kept. Measured: without
-- it, orders spent most of its CPU scanning published events, and the cost
-- of an order grew with every order before it (docs/PERFORMANCE.md).
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
