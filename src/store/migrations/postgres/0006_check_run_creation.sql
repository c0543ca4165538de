-- The newest outbox item a creation request for the check run carried, written before
-- each such request leaves: a check run with this set and no forge_id may exist on the
-- forge already (the answer was lost, or the farm crashed meanwhile), so it is looked up
-- by its external_id before it is created again, and the annotations that request
-- carried are not sent twice.
ALTER TABLE check_runs ADD COLUMN creation_sent_item BIGINT;
