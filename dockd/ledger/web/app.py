"""The supervision page (``dockd ledger serve``): Starlette + Jinja2, read-only.

Every route is GET (HEAD); anything else is 405, and there is no endpoint that writes.
Every query parameter is validated against the route's own list (unknown ones are a 400),
path parameters against the dock-id and serial patterns. Pages are server-rendered with
inline SVG charts and one local stylesheet: nothing is fetched from the internet.
Security headers: a strict Content-Security-Policy (no script at all), no framing, no
caching, no referrer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dockd.clock import Clock, parse_utc_iso
from dockd.config.ledger import LedgerSection, WebSection
from dockd.ledger import notes, queries
from dockd.ledger.render import period_line, sections, title
from dockd.ledger.reports import bureau_report
from dockd.ledger.web.auth import User, UsersFile
from dockd.ledger.web.charts import Series, bar_chart
from dockd.ledger.words import LANGUAGES, accept_language, label, words
from dockd.names import DOCK_ID_PATTERN, SERIAL_PATTERN
from dockd.records.periods import parse_week, previous_week

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
_WEEK = re.compile(r"^\d{4}-W\d{2}$")
MAX_HASH_RANGE = 10_000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}


class ConnectionPool:
    """A few psycopg connections shared by the request threads (reopened when lost)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], size: int = 4) -> None:
        self.connect = connect
        self.free: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.slots:
            try:
                conn = self.free.get_nowait()
            except queue.Empty:
                conn = self.connect()
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()
                raise
            except BaseException:
                conn.rollback()
                self.free.put(conn)
                raise
            else:
                self.free.put(conn)

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()


def create_app(section: LedgerSection, web: WebSection, pool: ConnectionPool,
               clock: Clock) -> Starlette:
    """The ASGI app of the page."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["local"] = lambda text: _local(text, section)
    pages = _Pages(section, pool, clock, env)
    users = UsersFile(web.users_file) if web.auth == "basic" and web.users_file else None
    routes = [
        Route("/", pages.overview, methods=["GET"]),
        Route("/alerts", pages.alerts, methods=["GET"]),
        Route("/docks/{dock}", pages.dock, methods=["GET"]),
        Route("/recorder", pages.recorder, methods=["GET"]),
        Route("/reports/{kind}", pages.report, methods=["GET"]),
        Route("/api/docks/{dock}/head", pages.api_head, methods=["GET"]),
        Route("/api/docks/{dock}/hashes", pages.api_hashes, methods=["GET"]),
        Route("/healthz", pages.healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[
        Middleware(_AuthMiddleware, web=web, users=users, env=env)],
        exception_handlers={HTTPException: pages.error,
                            psycopg.OperationalError: pages.unavailable})


class _AuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, web: WebSection, users: UsersFile | None,
                 env: Environment) -> None:
        super().__init__(app)
        self.web = web
        self.users = users
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in web.proxy_trusted]

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        user = self._user(request)
        if user is None:
            if self.web.auth == "basic":
                response: Response = Response(
                    "authentication required\n", 401,
                    {"WWW-Authenticate": 'Basic realm="dockd ledger", charset="UTF-8"'})
            else:
                response = Response("forbidden: not from the bureau's login proxy\n", 403)
        else:
            request.state.user = user
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def _user(self, request: Request) -> User | None:
        if request.url.path == "/healthz":
            return User("-", "audit")
        if self.web.auth == "basic":
            return self.users.check(request.headers.get("authorization")) if self.users else None
        peer = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if not any(address in net for net in self.trusted):
            return None
        name = request.headers.get(self.web.proxy_user_header, "").strip()
        if not name or len(name) > 128 or not name.isprintable():
            return None
        return User(name, "audit")


class _Pages:
    def __init__(self, section: LedgerSection, pool: ConnectionPool, clock: Clock,
                 env: Environment) -> None:
        self.section = section
        self.pool = pool
        self.clock = clock
        self.env = env

    # -- pages ------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        q = _params(request, {"lang"})
        now = self.clock.now()
        with self.pool.connection() as conn:
            docks = queries.dock_states(conn, now)
            bays = queries.bays(conn)
            alerts = queries.open_alerts(conn, limit=20)
        counts = {"online": sum(d["online"] == "online" for d in docks),
                  "offline": sum(d["online"] != "online" for d in docks),
                  "verified": sum(d["verification"] == "verified" for d in docks),
                  "alerts": sum(d["open_alerts"] for d in docks),
                  "faults": sum(b["state"] == "fault" for b in bays)}
        return self._page(request, q, "overview.html", docks=docks, bays=bays, alerts=alerts,
                          counts=counts, refresh=True)

    def alerts(self, request: Request) -> Response:
        q = _params(request, {"lang", "dock"})
        dock = _dock_param(q.get("dock"))
        with self.pool.connection() as conn:
            open_ = queries.open_alerts(conn, dock)
            closed = queries.closed_alerts(conn, dock)
            rejected = queries.rejected(conn, 50)
        return self._page(request, q, "alerts.html", open_alerts=open_, closed=closed,
                          rejected=rejected, dock=dock)

    def dock(self, request: Request) -> Response:
        q = _params(request, {"lang"})
        dock = _dock_param(request.path_params["dock"])
        assert dock is not None
        with self.pool.connection() as conn:
            state = [d for d in queries.dock_states(conn, self.clock.now()) if d["dock"] == dock]
            if not state:
                raise HTTPException(404, f"no dock {dock} is enrolled in the ledger")
            bays = queries.bays(conn, dock)
            alerts = queries.open_alerts(conn, dock)
            closed = queries.closed_alerts(conn, dock, 20)
        return self._page(request, q, "dock.html", d=state[0], bays=bays, alerts=alerts,
                          closed=closed)

    def recorder(self, request: Request) -> Response:
        q = _params(request, {"lang", "serial"})
        serial = q.get("serial", "")
        if not SERIAL_PATTERN.match(serial):
            raise HTTPException(400, "serial: letters, digits, '.', '_' or '-' (at most 64)")
        with self.pool.connection() as conn:
            history = queries.recorder_history(conn, serial)
            health = queries.recorder_health(conn, serial)
        return self._page(request, q, "recorder.html", serial=serial, history=history,
                          health=health)

    def report(self, request: Request) -> Response:
        q = _params(request, {"lang", "week"})
        kind = request.path_params["kind"]
        if kind not in ("weekly", "supervision"):
            raise HTTPException(404, "reports: weekly or supervision")
        week = q.get("week")
        if week is not None and not _WEEK.match(week):
            raise HTTPException(400, "week: an ISO week such as 2026-W48")
        tz = self.section.tz
        now = self.clock.now()
        try:
            period = parse_week(week, tz) if week else previous_week(now, tz)
        except Exception as exc:  # UsageError: a week that does not exist (2026-W60)
            raise HTTPException(400, str(exc)) from None
        with self.pool.connection() as conn:
            report = bureau_report(conn, kind, period, now, self.section.undocked_alert_hours)
        _ = self._words(request, q)
        chart = bar_chart([d.day[5:] for d in report.days],
                          [Series(_("files"), [d.files for d in report.days], "s1"),
                           Series(_("docks"), [d.docks for d in report.days], "s2"),
                           Series(_("failures and faults"), [d.problems for d in report.days],
                                  "s3")], title(report, _))
        monday = period.start.date()
        prev_week = _iso_week(monday - dt.timedelta(days=7))
        next_week = _iso_week(monday + dt.timedelta(days=7))
        return self._page(request, q, "report.html", report=report, kind=kind,
                          heading=title(report, _), period=period_line(report, _),
                          sections=sections(report, _, lambda t: _local(t, self.section)),
                          chart=chart, prev_week=prev_week,
                          next_week=next_week)

    # -- the JSON API of `dockd verify --against-ledger` ------------------------------

    def api_head(self, request: Request) -> Response:
        _params(request, set())
        dock = _dock_param(request.path_params["dock"])
        assert dock is not None
        with self.pool.connection() as conn:
            head = queries.chain_head(conn, dock)
            alerts = queries.open_alerts(conn, dock)
        if head is None:
            raise HTTPException(404, f"no dock {dock} is enrolled in the ledger")
        head["open_alerts"] = [{k: a[k] for k in ("kind", "seq_from", "seq_to", "detail")}
                               for a in alerts]
        return JSONResponse(head)

    def api_hashes(self, request: Request) -> Response:
        q = _params(request, {"from", "to"})
        dock = _dock_param(request.path_params["dock"])
        assert dock is not None
        first, last = _int_param(q, "from"), _int_param(q, "to")
        if last < first or last - first >= MAX_HASH_RANGE:
            raise HTTPException(400, f"to must be >= from and the range at most "
                                     f"{MAX_HASH_RANGE} seqs")
        with self.pool.connection() as conn:
            rows = queries.chain_hashes(conn, dock, first, last)
        return JSONResponse({"dock": dock, "from": first, "to": last, "records": rows})

    def healthz(self, request: Request) -> Response:
        _params(request, set())
        with self.pool.connection() as conn:
            conn.execute("SELECT 1")
            conn.commit()
        return Response("ok\n", media_type="text/plain")

    # -- errors ---------------------------------------------------------------------

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, exc.status_code, exc.headers)
        q = {k: v for k, v in request.query_params.items() if k == "lang" and v in LANGUAGES}
        response = self._page(request, q, "error.html", status=exc.status_code,
                              message=exc.detail)
        response.status_code = exc.status_code
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log.warning("PostgreSQL unavailable for the page: %s", str(exc).splitlines()[0])
        return Response("the ledger database is unavailable; try again shortly\n", 503,
                        {"Retry-After": "10"}, media_type="text/plain")

    # -- helpers ----------------------------------------------------------------------

    def _words(self, request: Request, q: dict[str, str]) -> Any:
        return words(q.get("lang") or accept_language(request.headers.get("accept-language")))

    def _page(self, request: Request, q: dict[str, str], template: str,
              **context: Any) -> HTMLResponse:
        lang = q.get("lang") or accept_language(request.headers.get("accept-language"))
        user = getattr(request.state, "user", None)
        _ = words(lang)
        html = self.env.get_template(template).render(
            _=_, label=lambda code: label(_, str(code)), lang=lang,
            say=lambda note, text: notes.shown(_, note, text),
            html_lang="zh-CN" if lang == "zh_CN" else "en",
            user=user, path=request.url.path, query=q, now=self.clock.now(), **context)
        return HTMLResponse(html)


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters of a request, each allowed once and validated; 400 otherwise."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise HTTPException(400, f"unknown query parameter {key[:40]!r}")
        if key in out:
            raise HTTPException(400, f"query parameter {key!r} given twice")
        if len(value) > 128 or not value.isprintable():
            raise HTTPException(400, f"query parameter {key!r} is too long or not printable")
        out[key] = value
    if "lang" in out and out["lang"] not in LANGUAGES:
        raise HTTPException(400, f"lang: one of {', '.join(LANGUAGES)}")
    return out


def _dock_param(value: str | None) -> str | None:
    if value is None:
        return None
    if not DOCK_ID_PATTERN.match(value):
        raise HTTPException(400, "dock: letters, digits, '-' or '_' (at most 64)")
    return value


def _int_param(q: dict[str, str], name: str) -> int:
    value = q.get(name)
    if value is None or not value.isdigit() or len(value) > 18 or int(value) < 1:
        raise HTTPException(400, f"{name}: a positive whole number is required")
    return int(value)


def _iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _local(text: object, section: LedgerSection) -> str:
    """An RFC 3339 time in the bureau's time zone, to the second (a dash when unknown)."""
    if not isinstance(text, str) or not text:
        return "—"
    try:
        return parse_utc_iso(text).astimezone(section.tz).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text
