-- The process group of the step a release is running, so a restart can stop what a
-- crashed run left behind before running the step again.

ALTER TABLE releases ADD COLUMN step_pid BIGINT;
