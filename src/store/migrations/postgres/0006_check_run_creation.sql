-- When the reporter first sent a check run's creation to the forge (ms), written before
-- the request leaves: a check run with this set and no forge_id may exist on the forge
-- already (the answer was lost, or the farm crashed meanwhile), so it is looked up by
-- its external_id before it is created again.
ALTER TABLE check_runs ADD COLUMN creation_attempted_at BIGINT;
