"""The local side of file drops: `run_local import FILE...`, a watched folder, and `run`'s drop folder.

Each file goes through cloud_functions/file_drop exactly as an object dropped in the bucket does (bucket `local`,
the file's path as its name, its modification time as its generation); a run that reaches its time budget is
run again at once from where it stopped, as Eventarc's retry would. One line per file says what it was
recognised as, why, and how it ended; unmapped columns and unreadable files are said too.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from cloud_functions.file_drop.storage import local_file
from cloud_functions.file_drop.sync import import_drop
from pipeline.runtime import Runtime

FINAL = ("loaded", "duplicate", "unreadable")
POLL_SECONDS = 2.0


class DropsRefused(Exception):
    """Some dropped files could not be read or failed to load: the message names each."""


def drop_line(path: Path, summary: dict[str, Any]) -> str:
    """One line about an imported file: what it was, why, how it ended, its counts."""
    details = summary["details"]
    what = summary["kind"] if summary["kind"] != "crm_export" else f"{details['crm']} ({details['confidence']:.0%})"
    line = (f"  {path}: {what} {summary['drop_status']}, loaded {summary['rows_loaded']:,} rejected "
            f"{summary['rows_rejected']:,} ({summary['run_id']})")
    if summary.get("reason"):
        line += f"\n    why: {summary['reason']}"
    if details.get("unmapped_columns"):
        line += f"\n    unmapped columns (kept in raw_row): {', '.join(details['unmapped_columns'])}"
    return line


def import_file(path: Path, runtime: Runtime, mailbox: str | None = None) -> dict[str, Any]:
    """Imports one file to its end (a partial run is resumed at once) or until another import holds it."""
    drop = local_file(path)  # read and hashed once, not once per resumed run
    summary = import_drop(drop, runtime, mailbox=mailbox)
    while summary["drop_status"] == "partial":
        summary = import_drop(drop, runtime, mailbox=mailbox)
    return summary


def import_files(paths: Iterable[Path], runtime: Runtime, mailbox: str | None = None,
                 say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Imports each file, saying a line for each; DropsRefused at the end naming the unreadable ones."""
    summaries, refused = [], []
    for path in paths:
        summary = import_file(path, runtime, mailbox)
        summaries.append(summary)
        say(drop_line(path, summary))
        if summary["drop_status"] == "unreadable":
            refused.append(f"{path}: {summary['reason']}")
    if refused:
        raise DropsRefused("could not read " + "; ".join(refused))
    return summaries


def files_in(folder: Path) -> list[Path]:
    """The files under folder (hidden ones and partial downloads left out), in name order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and not p.name.endswith((".part", ".crdownload", ".tmp")))


def watch(folder: Path, runtime: Runtime, polls: int | None = None, say: Callable[[str], None] = print) -> None:
    """Imports every file under folder that has not been imported in its present version, then each one that
    appears or changes, until interrupted (or `polls` rounds have passed). A file is imported once its size has
    held still for one poll, so one still being written is not read half-way."""
    folder.mkdir(parents=True, exist_ok=True)
    say(f"watching {folder} (Ctrl-C stops)")
    seen: dict[Path, tuple[int, int]] = {}
    sizes: dict[Path, int] = {}
    round_ = 0
    while polls is None or round_ < polls:
        for path in files_in(folder):
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            if seen.get(path) == version or sizes.get(path) != stat.st_size:
                sizes[path] = stat.st_size
                continue
            try:
                import_files([path], runtime, say=say)
            except DropsRefused as refused:
                say(f"  {refused}")
            seen[path] = version
        round_ += 1
        if polls is None or round_ < polls:
            time.sleep(POLL_SECONDS)



def run_drop_folder(runtime: Runtime, sandboxes: bool) -> None:
    """`run`'s file drops: with the sandboxes, a sample folder of exports about the sandbox company (written beside
    the warehouse); otherwise FILE_DROP_FOLDER's files, when the folder exists."""
    settings = runtime.settings
    if sandboxes:
        from sandbox.file_drops import write_sample_drops

        folder = settings.duckdb_path.parent / "sandbox-drops"
        write_sample_drops(folder)
    else:
        folder = settings.file_drop_folder
        if not folder.is_dir():
            return
    print(f"file drops: importing {folder}", flush=True)
    import_files(files_in(folder), runtime)
