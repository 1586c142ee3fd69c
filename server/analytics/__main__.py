"""`python -m server.analytics purge`: apply the retention period to the events database now."""

from __future__ import annotations

import argparse
import json

from server.analytics.store import purge_path
from server.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.analytics")
    sub = parser.add_subparsers(dest="command", required=True)
    purge = sub.add_parser("purge", help="delete analytics data older than the retention period")
    purge.add_argument("--days", type=int, default=None, help="override the retention (days)")
    args = parser.parse_args(argv)
    settings = load_settings()
    days = settings.analytics_retention_days if args.days is None else args.days
    removed = purge_path(settings.events_db_path, days)
    print(json.dumps({"retention_days": days, "removed": removed}))


if __name__ == "__main__":
    main()
