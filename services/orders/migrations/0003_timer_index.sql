-- The sweeper asks every tick which acceptance windows have closed; only
-- orders awaiting their restaurant can have one, so only they are indexed
-- (without it, every tick read every order ever placed).
CREATE INDEX orders_awaiting_restaurant ON orders (accept_by) WHERE status = 'AWAITING_RESTAURANT';
