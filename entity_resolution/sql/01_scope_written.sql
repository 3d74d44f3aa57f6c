-- What the runs that ended since @since wrote: per run, the partitions its rows fell in per table
-- (details.partitions_written, recorded by pipeline/runner.py as it merges), and its status. A run that ended
-- `abandoned` (killed, out of memory) left no such record: the matched tables are then read whole. A run
-- `cancelled` (SIGINT, SIGTERM) recorded what it merged before it stopped.
-- A run ended at updated_at; one ending after @since started at most the abandoned-run lookback before it
-- (@oldest), which bounds the etl_runs partitions read.
-- Parameters: @since, @oldest (TIMESTAMP), @source (STRING).
SELECT status, updated_at, details
FROM ${dataset}.etl_runs
WHERE started_at >= @oldest AND updated_at >= @since AND source != @source
  AND status IN ('success', 'partial', 'failed', 'abandoned', 'cancelled')
