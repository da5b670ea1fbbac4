"""Security headers on every answer (OWASP's HTTP Headers Cheat Sheet).

Content-Security-Policy: scripts only from this server plus the inline scripts a UI on the
same app declares by their hashes (Dash's renderer start and clientside callbacks); no plugins,
no base URI, forms post only here. Styles allow 'unsafe-inline': plotly.js and MapLibre
write their styles into the page as they draw. MapLibre decodes in workers started from
``blob:`` URLs. Only the basemap's host (ONEMAP_TILE_URL) is reached besides this server.

No page may be framed, except the big screen by the pages ONEMAP_FRAME_ANCESTORS names.
No page sends a referrer (a kiosk's address must not leak). API answers and exports are
never stored by a browser or proxy (``no-store``: they hold scoped, maybe personal data);
tiles keep their own short private caching, static code its usual caching.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import flask

from onemap.settings import Settings

STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_favicon.ico")
FRAMED_PATHS = ("/bigscreen",)


def install_headers(server: flask.Flask, settings: Settings,
                    script_hashes: Callable[[], list[str]] = list) -> None:
    """Add the headers to every answer of ``server``; ``script_hashes`` gives the CSP hashes
    of the inline scripts its pages run (none for the API alone)."""
    basemap = _origin(settings.tile_url)
    framers = settings.frame_ancestors.strip()
    policies: dict[bool, str] = {}  # built at the first answer, once the UI holds its scripts

    def add(response: flask.Response) -> flask.Response:
        headers = response.headers
        framed = bool(framers) and flask.request.path.startswith(FRAMED_PATHS)
        if framed not in policies:
            policies[framed] = content_policy(script_hashes(), basemap,
                                              framers if framed else "'none'")
        headers["Content-Security-Policy"] = policies[framed]
        if not framed:
            headers["X-Frame-Options"] = "DENY"  # browsers older than frame-ancestors
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Content-Type-Options"] = "nosniff"
        if "Cache-Control" not in headers and not flask.request.path.startswith(
                STATIC_PREFIXES):
            headers["Cache-Control"] = "no-store"
        return response

    server.after_request(add)


def content_policy(script_hashes: list[str], basemap: str | None, framers: str) -> str:
    """The Content-Security-Policy value."""
    extra = f" {basemap}" if basemap else ""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob:{extra}",
        f"connect-src 'self'{extra}",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {framers}",
    ])


def _origin(url: str | None) -> str | None:
    """scheme://host[:port] of a tile URL template (its {z}/{x}/{y} are in the path)."""
    if not url:
        return None
    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
