-- Checks every row against the bound: a scan that lets inserts go on.
ALTER TABLE readings VALIDATE CONSTRAINT readings_received_bound;
