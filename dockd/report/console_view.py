"""Pure rendering of the dock state: a snapshot in, rich renderables or plain text out.

``render_status_text`` is ``dockd status``'s one-shot table; ``render_console`` is one
frame of ``dockd console``. Both take the state channel's JSON as it arrived (see
``console_model.parse_state``: nothing in it can make them raise) and never use rich
markup for data, so a name like ``[red]`` is shown as typed.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dockd.clock import parse_utc_iso, system_zone
from dockd.dock.states import BayState, FaultReason
from dockd.i18n import _, local_time
from dockd.report.console_model import BayView, ConsoleState, DockView, parse_state
from dockd.report.console_words import (
    broker_words,
    fault_sentence,
    format_bytes,
    format_drift,
    format_duration,
    is_dock_fault,
    state_hint,
    state_name,
    unchecked_sentence,
)

DEFAULT_WIDTH = 120
BAR_CELLS = 30
WIDE = 110  # columns from which the bay table carries its own "what to do" column
_STATE_STYLE = {
    BayState.EMPTY.value: "dim", BayState.IDENTIFYING.value: "yellow",
    BayState.CHECKING.value: "yellow", BayState.OFFLOADING.value: "bold yellow",
    BayState.READY.value: "bold green", BayState.READY_UNCHECKED.value: "bold yellow",
    BayState.FAULT.value: "bold red",
}


@dataclass(frozen=True)
class LinkView:
    """How the live console's link to the daemon stands.

    ``connected`` False with ``received_at`` set means the daemon went away after sending
    the state shown; without it, nothing has been received yet.
    """

    socket: str
    connected: bool
    detail: str | None = None  # why not connected, or what was wrong with the last line
    received_at: str | None = None  # local time the shown state arrived, "HH:MM:SS"


def render_status_text(state: object, width: int | None = None,
                       tz: dt.tzinfo | None = None) -> str:
    """``dockd status``: the dock line and one table row per bay, as plain text (no colours,
    no escape sequences). ``width`` defaults to the terminal's, else 120 columns; times in
    ``tz`` (``[dock] timezone``; default the system's)."""
    if width is None:
        width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    view = parse_state(state)
    out = io.StringIO()
    console = Console(file=out, width=max(40, width), color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False, markup=False, _environ={})
    console.print(Group(*_dock_lines(view.dock, width, tz), Text(""), *_bays(view, live=False, width=width),
                        *_problem_lines(view)))
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip("\n").split("\n"))


def _local(utc_text: str, tz: dt.tzinfo | None) -> str:
    """The daemon's UTC time as a person reads it; as sent when it is not a time."""
    try:
        moment = parse_utc_iso(utc_text)
    except (ValueError, OverflowError):
        return utc_text
    return local_time(moment, tz or system_zone())


def render_console(state: object | None, link: LinkView, width: int = DEFAULT_WIDTH,
                   tz: dt.tzinfo | None = None) -> RenderableType:
    """One frame of ``dockd console`` for a terminal ``width`` columns wide: link line, dock
    line, bays with progress bars, footer. ``state`` None: nothing received yet. Times in
    ``tz`` (``[dock] timezone``; default the system's)."""
    parts: list[RenderableType] = [_link_line(link)]
    if state is not None:
        view = parse_state(state)
        parts += [*_dock_lines(view.dock, width, tz), Text(""), *_bays(view, live=True, width=width),
                  *_problem_lines(view)]
    parts += [Text(""), Text(_("Press q to quit"), style="dim")]
    return Group(*parts)


# -- dock ---------------------------------------------------------------------------------------


def _dock_lines(dock: DockView, width: int, tz: dt.tzinfo | None) -> list[Text]:
    title = Text(_("Dock {id}").format(id=dock.id or "?"), style="bold")
    if dock.site:
        title.append(f"  {dock.site}")
    if dock.time:
        title.append(f"  {_local(dock.time, tz)}", style="dim")
    broker = dock.broker
    depth = dock.outbox_depth
    if dock.clock_synchronised is True:
        clock = Text(_("Clock: synchronised"), style="green")
    elif dock.clock_synchronised is False:
        clock = Text(_("Clock: NOT synchronised — call the administrator"), style="bold red")
    else:
        clock = Text(_("Clock: unknown"))
    parts = [
        Text(_("Store: {free} free of {total}").format(
            free=format_bytes(dock.store_free_bytes), total=format_bytes(dock.store_total_bytes))),
        Text(_("Broker: {state}").format(state=broker_words(broker.status, broker.error)),
             style={"connected": "green", "offline": "bold red"}.get(broker.status, "")),
        clock,
        Text(_("Outbox: {count} waiting").format(count="?" if depth is None else depth),
             style="yellow" if depth else ""),
    ]
    line = Text("  ·  ").join(parts)
    # One line when it fits; else one part a line, never a part broken in two.
    return [title, line] if line.cell_len <= width else [title, *parts]


def _link_line(link: LinkView) -> Text:
    if link.connected:
        text = Text("● " + _("live from {socket}").format(socket=link.socket), style="green")
        if link.detail:
            text.append("   " + link.detail, style="yellow")
        return text
    if link.received_at is None:
        text = Text(_("Waiting for dockd on {socket} …").format(socket=link.socket), style="bold yellow")
    else:
        text = Text(_("dockd is not answering on {socket} — showing the state of {time}, retrying")
                    .format(socket=link.socket, time=link.received_at), style="bold red")
    if link.detail:
        text.append(f"  ({link.detail})", style="dim")
    return text


def _problem_lines(view: ConsoleState) -> list[Text]:
    if not view.problems:
        return []
    return [Text(_("Part of the state could not be read: {problems}")
                 .format(problems="; ".join(view.problems)), style="yellow")]


# -- bays ---------------------------------------------------------------------------------------


def bay_name(bay: BayView) -> str:
    """The bay as the dock's front names it: a label that is only its number (``1``) or
    the config's default (``Bay 1``) is said in the reader's language ("Bay 1", "1 号仓位"),
    never "Bay Bay 1" or "仓位 Bay 1"; any other label as configured."""
    if bay.bay is not None and bay.label in (str(bay.bay), f"Bay {bay.bay}"):
        return _("Bay {number}").format(number=bay.bay)
    return bay.label


def _bays(view: ConsoleState, live: bool, width: int) -> list[RenderableType]:
    # Wide enough: what to do sits in the bay's row. Narrow: it goes below the table, one
    # line per bay, so it is never the column that gets squeezed away.
    if not view.bays:
        return [Text(_("No bays yet."), style="dim")]
    inline = width >= WIDE
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=live)
    for heading, justify in ((_("Bay"), "left"), (_("State"), "left"), (_("Recorder"), "left"),
                             (_("Officer"), "left"), (_("Battery"), "right"),
                             (_("Storage free"), "right"), (_("Clock drift"), "right")):
        table.add_column(heading, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis", min_width=max(5, cell_len(heading)))
    if inline:
        table.add_column(_("Progress / what to do"), ratio=1, min_width=24)
    below: list[tuple[RenderableType, RenderableType]] = []
    for bay in view.bays:
        cells = _bay_cells(bay)
        detail = _detail(bay, live)
        if inline:
            cells.append(detail)
        else:
            below.append((Text(f"{bay_name(bay)}:", style="bold"), detail))
        table.add_row(*cells)
    if not below:
        return [table]
    grid = Table.grid(padding=(0, 1), expand=live)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    for row in below:
        grid.add_row(*row)
    return [table, grid]


def _bay_cells(bay: BayView) -> list[RenderableType]:
    fault = bay.fault if bay.state == BayState.FAULT.value else None
    return [
        # Under the "Bay" heading the default label "Bay 1" says only its number.
        Text(str(bay.bay) if bay.label == f"Bay {bay.bay}" else bay.label, style="bold"),
        Text(state_name(bay.state), style=_STATE_STYLE.get(bay.state, "")),
        Text(bay.recorder or "—"),
        Text(bay.officer or "—"),
        Text("?" if bay.battery_percent is None else f"{bay.battery_percent:.0f} %",
             style="bold red" if fault == FaultReason.BATTERY_LOW.value else ""),
        Text(_storage(bay), style="bold red" if fault == FaultReason.STORAGE_FULL.value else ""),
        Text(format_drift(bay.clock_drift_s),
             style="bold red" if fault == FaultReason.CLOCK_SET_FAILED.value else ""),
    ]


def _storage(bay: BayView) -> str:
    if bay.storage_free_bytes is None and bay.storage_total_bytes is None:
        return "?"
    return f"{format_bytes(bay.storage_free_bytes)} / {format_bytes(bay.storage_total_bytes)}"


def _detail(bay: BayView, live: bool) -> RenderableType:
    if bay.state == BayState.FAULT.value:
        sentence = fault_sentence(bay.fault)
        return Text(sentence, style="bold red" if is_dock_fault(bay.fault) else "red")
    if bay.state == BayState.READY_UNCHECKED.value:
        return Text(unchecked_sentence(bay.unchecked), style="yellow")
    if bay.state != BayState.OFFLOADING.value:
        return Text(state_hint(bay.state), style="green" if bay.state == BayState.READY.value else "")
    head, tail = _progress_words(bay)
    fraction = bay.progress.fraction
    if not live:
        return Text(" · ".join(part for part in (head, tail) if part))
    top = _bar(fraction) if fraction is not None else Text()
    if head:
        top.append((" " if fraction is not None else "") + head)
    return Group(top, Text(tail)) if tail else top


def _bar(fraction: float) -> Text:
    # Drawn as text, not rich's ProgressBar: the unfilled part stays visible without colour
    # and the bar keeps its own line inside a table cell.
    filled = round(fraction * BAR_CELLS)
    bar = Text("━" * filled, style="green")
    bar.append("─" * (BAR_CELLS - filled), style="dim")
    return bar


def _progress_words(bay: BayView) -> tuple[str, str]:
    """("35 % · 12/40 files", "1.2 GB of 3.4 GB · 25.0 MB/s · 1 min 28 s left"): how far,
    and how fast; what is unknown is left out."""
    p = bay.progress
    head: list[str] = []
    tail: list[str] = []
    if p.fraction is not None:
        head.append(f"{p.fraction * 100:.0f} %")
    # A total of 0 with something done: the volume is still being counted (dockd starts
    # copying before its walk of the volume ends).
    if p.files_total:
        head.append(_("{done}/{total} files").format(
            done="?" if p.files_done is None else p.files_done, total=p.files_total))
    elif p.files_done:
        head.append(_("{done} files").format(done=p.files_done))
    if p.bytes_total:
        tail.append(_("{done} of {total}").format(done=format_bytes(p.bytes_done),
                                                  total=format_bytes(p.bytes_total)))
    elif p.bytes_done:
        tail.append(format_bytes(p.bytes_done))
    if p.rate_bytes_per_s:
        tail.append(_("{rate}/s").format(rate=format_bytes(int(p.rate_bytes_per_s))))
    if p.seconds_left is not None:
        tail.append(_("{time} left").format(time=format_duration(p.seconds_left)))
    if not head and not tail:
        return _("Copying recordings — please wait"), ""
    return " · ".join(head), " · ".join(tail)
