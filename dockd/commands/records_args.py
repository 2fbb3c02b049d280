"""Argument helpers shared by the records commands: turning ``--item/--case/--recorder
--from --to`` into item hashes."""

from __future__ import annotations

import argparse
import datetime as dt

from dockd.config import Config
from dockd.errors import UsageError
from dockd.i18n import _
from dockd.records.periods import day_range, parse_day
from dockd.records.selection import (
    case_item_shas,
    recorder_item_shas,
    require_case,
    require_recorder,
    resolve_items,
)
from dockd.store.catalog import Catalog


def add_range_options(parser: argparse.ArgumentParser) -> None:
    """``--from DATE --to DATE`` (local days, inclusive; ``[dock] timezone``)."""
    parser.add_argument("--from", dest="date_from", metavar="DATE",
                        help=_("first day, YYYY-MM-DD (local time)"))
    parser.add_argument("--to", dest="date_to", metavar="DATE",
                        help=_("last day, YYYY-MM-DD, inclusive (local time)"))


def date_range(config: Config, args: argparse.Namespace
               ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The ``--from``/``--to`` days as a half-open instant range (either end may be open)."""
    tz = config.dock.tz
    start = parse_day(args.date_from, tz, "--from").start if args.date_from else None
    end = parse_day(args.date_to, tz, "--to").end if args.date_to else None
    if start and end:
        day_range(start.date(), (end - dt.timedelta(days=1)).date(), tz)
    return start, end


def select_shas(catalog: Catalog, config: Config, args: argparse.Namespace,
                strict: bool) -> tuple[list[str], str | None]:
    """The items named by ``--item(s)``, ``--case`` or ``--recorder [--from --to]``, and the
    case number when selected by case."""
    items = getattr(args, "items", None)
    case = getattr(args, "case", None)
    recorder: str = getattr(args, "recorder", None) or ""
    given = [x for x in (items, case, recorder) if x]
    if len(given) != 1:
        raise UsageError(_("name exactly one of --item/--items, --case or --recorder"))
    has_range = getattr(args, "date_from", None) or getattr(args, "date_to", None)
    if has_range and not recorder:
        raise UsageError(_("--from and --to apply only with --recorder"))
    if items:
        return resolve_items(catalog, list(items)), None
    if case:
        require_case(catalog, case)
        return case_item_shas(catalog, case), case
    require_recorder(catalog, recorder)
    start, end = date_range(config, args)
    return recorder_item_shas(catalog, recorder, start, end, strict=strict), None
