"""``assetsearch job``: index jobs the server runs over its library roots, with a progress bar."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cli.options import client_flags, connect, settings_from

if TYPE_CHECKING:
    from assetsearch_client import SearchClient

EXIT_SUCCEEDED, EXIT_NOT_SUCCEEDED, EXIT_DETACHED = 0, 1, 130
WATCH_HELP = "then show its progress until it ends (exit 0 only when it succeeds)"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``job`` command and its actions."""
    p = commands.add_parser(
        "job", help="index jobs run by the server over its library roots: start, watch, list"
    )
    actions = p.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="index server-side paths; prints the job id")
    start.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or folders on the server, under its library roots (relative: to the first)",
    )
    start.add_argument(
        "--retry-failed", action="store_true", help="decode files that failed before again"
    )
    start.add_argument("--watch", action="store_true", help=WATCH_HELP)
    start.set_defaults(func=start_job)
    watch = actions.add_parser("watch", help="show a job's progress until it ends")
    watch.set_defaults(func=watch_job)
    cancel = actions.add_parser("cancel", help="stop a job after its current batch")
    cancel.set_defaults(func=cancel_job)
    resume = actions.add_parser(
        "resume", help="run a cancelled, interrupted or failed job again (done files skipped)"
    )
    resume.add_argument("--watch", action="store_true", help=WATCH_HELP)
    resume.set_defaults(func=resume_job)
    for action in (watch, cancel, resume):
        action.add_argument("id", type=int, metavar="ID", help="the job's id")
    listing = actions.add_parser("list", help="the newest jobs, newest first")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.set_defaults(func=list_jobs)
    for action_parser in actions.choices.values():
        client_flags(action_parser, json_help="print JSON Lines, one object per job (update)")


def start_job(args: argparse.Namespace) -> int:
    """Start an index job and print its id (and, with --watch, follow it)."""
    with connect(settings_from(args)) as client:
        job = client.start_index_job(
            args.paths, collection=args.collection or "", retry_failed=args.retry_failed
        )
        print(json.dumps(job_dict(job)) if args.json else f"started index job {job.id}")
        sys.stdout.flush()
        return _follow(client, job.id, args.json) if args.watch else EXIT_SUCCEEDED


def watch_job(args: argparse.Namespace) -> int:
    """Follow a job to its end; exit 0 when it succeeded, 1 otherwise."""
    with connect(settings_from(args)) as client:
        return _follow(client, args.id, args.json)


def cancel_job(args: argparse.Namespace) -> int:
    """Ask a job to stop."""
    with connect(settings_from(args)) as client:
        job = client.cancel_index_job(args.id)
    running = job.state == job.STATE_RUNNING
    note = " (it stops after its current batch)" if running else ""
    print(json.dumps(job_dict(job)) if args.json else summary_line(job) + note)
    return EXIT_SUCCEEDED


def resume_job(args: argparse.Namespace) -> int:
    """Queue a stopped job again (and, with --watch, follow it)."""
    with connect(settings_from(args)) as client:
        job = client.resume_index_job(args.id)
        print(json.dumps(job_dict(job)) if args.json else f"resumed index job {job.id}")
        sys.stdout.flush()
        return _follow(client, job.id, args.json) if args.watch else EXIT_SUCCEEDED


def list_jobs(args: argparse.Namespace) -> int:
    """Print the newest jobs."""
    with connect(settings_from(args)) as client:
        jobs = client.list_index_jobs(args.collection or "", args.limit)
    if args.json:
        for job in jobs:
            print(json.dumps(job_dict(job)))
        return EXIT_SUCCEEDED
    if not jobs:
        print("no index jobs")
        return EXIT_SUCCEEDED
    print(f"{'ID':>6}  {'STATE':<11} {'COLLECTION':<16} {'DONE/TOTAL':>15} {'STARTED':<16}  PATHS")
    for job in jobs:
        print(_list_line(job))
    return EXIT_SUCCEEDED


def _follow(client: SearchClient, job_id: int, as_json: bool) -> int:
    """Show the job's updates until it ends; its summary line last."""
    updates = client.watch_index_job(job_id, timeout=None)
    last = None
    try:
        if as_json:
            for last in updates:
                print(json.dumps(job_dict(last)), flush=True)
        else:
            last = _progress_bar(updates)
    except KeyboardInterrupt:
        print(
            f"stopped watching; job {job_id} goes on (`assetsearch job cancel {job_id}` stops it)",
            file=sys.stderr,
        )
        return EXIT_DETACHED
    if last is None:  # the stream ended without an update: the server is stopping
        return EXIT_NOT_SUCCEEDED
    if not as_json:
        print(summary_line(last))
    return EXIT_SUCCEEDED if last.state == last.STATE_SUCCEEDED else EXIT_NOT_SUCCEEDED


def _progress_bar(updates: Iterable[Any]) -> Any:
    """Draw the updates as a tqdm bar on stderr (a terminal only); returns the last one."""
    from tqdm import tqdm

    last = None
    bar = tqdm(
        unit="file",
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}",  # postfix: ", rate, ..."
    )
    try:
        for last in updates:
            bar.total = last.files_total or None
            bar.n = last.files_done
            bar.set_description(f"job {last.id} {state_name(last)}", refresh=False)
            bar.set_postfix_str(_rate(last), refresh=False)
            bar.refresh()
    finally:
        bar.close()
    return last


def _rate(job: Any) -> str:
    parts = [f"{job.files_per_second:.1f} files/s"]
    if job.eta_seconds:
        parts.append(f"ETA {_duration(job.eta_seconds)}")
    if job.current_file:
        parts.append(job.current_file)
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def state_name(job: Any) -> str:
    """A job's state as a word: ``queued``, ``running``, ``succeeded``, ..."""
    return str(job.State.Name(job.state)).removeprefix("STATE_").lower()


def summary_line(job: Any) -> str:
    """One line on a job: its state and counts, and why it failed."""
    line = (
        f"job {job.id} {state_name(job)}: {job.files_done}/{job.files_total} files, indexed "
        f"{job.indexed}, unchanged {job.unchanged}, failed {job.failed}, deleted {job.deleted}"
    )
    if job.started_at.seconds and job.finished_at.seconds:
        seconds = job.finished_at.ToNanoseconds() - job.started_at.ToNanoseconds()
        line += f" in {seconds / 1e9:.1f} s"
    return f"{line}: {job.error}" if job.error else line


def _list_line(job: Any) -> str:
    started = (
        job.started_at.ToDatetime().strftime("%Y-%m-%d %H:%M") if job.started_at.seconds else "-"
    )
    return (
        f"{job.id:>6}  {state_name(job):<11} {job.collection:<16} "
        f"{job.files_done:>7}/{job.files_total:<7} {started:<16}  {' '.join(job.paths)}"
    )


def job_dict(job: Any) -> dict[str, Any]:
    """A job as a JSON object (timestamps in ISO 8601, None when not reached)."""

    def when(ts: Any) -> str | None:
        return ts.ToJsonString() if ts.seconds or ts.nanos else None

    return {
        "id": job.id,
        "collection": job.collection,
        "paths": list(job.paths),
        "state": state_name(job),
        "files_total": job.files_total,
        "files_done": job.files_done,
        "indexed": job.indexed,
        "unchanged": job.unchanged,
        "failed": job.failed,
        "deleted": job.deleted,
        "current_file": job.current_file,
        "files_per_second": round(job.files_per_second, 3),
        "eta_seconds": round(job.eta_seconds, 1),
        "error": job.error,
        "retry_failed": job.retry_failed,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
    }
