"""The runner and what a run needs: run_sync, run records (etl_runs), sync state, read-ahead, the runtime."""
