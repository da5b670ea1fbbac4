"""A report as someone asks for it, from the words of a request to the audited file: the one
path both the dashboard's download (``dashboard.report_download``) and ``onemap report``
take.

Everything is checked before anything is read: the format, the language, the principal's
right to take files away (a kiosk's or a feed's is refused) and the period; the scope is
checked by the read itself (``layers.access.scope_for``), and a refusal is written to the
audit log, as is every report made.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.messages import LANGUAGES
from dashboard.pdf import pdf_bytes
from dashboard.report import html_document, period_words, title
from layers.access import check_export
from layers.errors import BadParameter, Forbidden, StorageError
from layers.exports import take_slot
from layers.report import parse_period, report
from onemap.accounts import audit
from onemap.principal import Principal
from onemap.settings import Settings

LOG = logging.getLogger(__name__)
FORMATS = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Made:
    """A made report: its bytes, media type, file name and what it is of."""

    body: bytes
    media: str
    name: str
    title: str
    period: str

    @property
    def size(self) -> int:
        return len(self.body)


def make_report(reads: Engine, writer: Engine, who: Principal, scope: str | None,
                period: str | None, fmt: str, lang: str, settings: Settings,
                slots: int | None = None) -> Made:
    """The report of ``scope`` over ``period`` (``layers.report.parse_period``) as ``fmt``,
    read on ``reads`` and audited on ``writer``. With ``slots`` it takes one of the
    server's export slots while it is made (:func:`layers.exports.take_slot`)."""
    if fmt not in FORMATS:
        raise BadParameter("format", fmt, f"must be one of {', '.join(FORMATS)}")
    if lang not in LANGUAGES:
        raise BadParameter("lang", lang, f"must be one of {', '.join(LANGUAGES)}")
    days = parse_period(period)
    with ExitStack() as held:
        try:
            check_export(who, "report")
            if slots:
                take_slot(held.enter_context(reads.connect()), who.name, slots)
            data = report(reads, who, scope, days, settings.timezone, settings.due_soon_hours)
        except Forbidden as exc:
            _denied(writer, who, exc)
            raise
        document = html_document(data, lang, settings.timezone)
        body = document.encode("utf-8") if fmt == "html" else pdf_bytes(document)
    audit(writer, who, "report", True, data.scope["code"], period=days.code, format=fmt,
          lang=lang, size=len(body))
    return Made(body, FORMATS[fmt], f"report-{data.scope['code'] or 'all'}-{days.code}.{fmt}",
                title(data, lang), period_words(days, lang))


def _denied(writer: Engine, who: Principal, exc: Forbidden) -> None:
    try:
        audit(writer, who, "denied", False, exc.target, what="report", reason=str(exc))
    except SQLAlchemyError as error:  # the refusal stands; the server log keeps it
        LOG.warning("audit log unavailable; %s denied a report: %s (%s)", who.name, exc, error)


def write_report(reads: Engine, writer: Engine, who: Principal, scope: str | None,
                 period: str | None, fmt: str, lang: str, settings: Settings,
                 out: Path) -> Made:
    """:func:`make_report` written to ``out`` (whole or not at all)."""
    made = make_report(reads, writer, who, scope, period, fmt, lang, settings)
    out = Path(out)
    partial = out.with_name(out.name + ".part")
    try:
        partial.write_bytes(made.body)
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return made
