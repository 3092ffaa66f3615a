-- Which orders process drives a saga right now, and until when: replicas
-- of orders never execute the same saga step at once. A lease that was
-- not released (a killed replica) expires, and another replica's sweeper
-- takes the saga over.
ALTER TABLE orders ADD COLUMN driver TEXT;
ALTER TABLE orders ADD COLUMN lease_until TEXT;
