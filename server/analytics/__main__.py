"""`python -m server.analytics purge`: apply the retention period now (the events database, and
the feedback rows of the content database)."""

from __future__ import annotations

import argparse
import json

from server.analytics.store import cutoff_day, purge_path
from server.settings import load_settings
from server.storage import Storage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.analytics")
    sub = parser.add_subparsers(dest="command", required=True)
    purge = sub.add_parser("purge", help="delete analytics data older than the retention period")
    purge.add_argument("--days", type=int, default=None, help="override the retention (days)")
    args = parser.parse_args(argv)
    settings = load_settings()
    days = settings.analytics_retention_days if args.days is None else args.days
    removed = purge_path(settings.events_db_path, days, url=settings.events_database_url)
    storage = Storage(
        settings.db_path,
        analytics_secret=settings.analytics_secret,
        key_dir=settings.data_dir,
        url=settings.database_url,
    )
    storage.open_sync()
    try:
        removed["feedback"] = storage.purge_feedback_sync(cutoff_day(days))
    finally:
        storage.close_sync()
    print(json.dumps({"retention_days": days, "removed": removed}))


if __name__ == "__main__":
    main()
