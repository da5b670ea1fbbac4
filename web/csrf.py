"""Requests another site makes a browser send are refused when they would change
something (cross-site request forgery): signing in (a forged sign-in makes the victim
work in the attacker's account), a kiosk sign-in, signing out, an export (it is written
to the audit log and may hold personal fields), a report (``/report.pdf``, audited too) and
every request sent with a method other than GET, HEAD or OPTIONS.

Browsers say where a request comes from: ``Sec-Fetch-Site`` (OWASP's Fetch Metadata
defence), and ``Origin`` on every POST, compared with the host asked for where the first
is missing. Clients that are not browsers (QGIS, scripts) send neither; no other site can
make them send anything.

Called by the sign-in gate (``web.auth``) before anything else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import flask

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WRITING_PATHS = ("/logout",)
WRITING_PREFIXES = ("/export/", "/report.")
# A kiosk may be shown in a frame of a page of the same site (ONEMAP_FRAME_ANCESTORS).
KIOSK_SOURCES = ("same-origin", "same-site", "none")
SOURCES = ("same-origin", "none")  # "none": typed, a bookmark, the browser itself


def cross_site_refusal() -> flask.Response | None:
    """A 403 for a request from another site that would change something, else None."""
    request = flask.request
    kiosk = request.method == "GET" and "kiosk" in request.args
    if not (kiosk or request.method not in SAFE_METHODS or request.path in WRITING_PATHS
            or request.path.startswith(WRITING_PREFIXES)):
        return None
    if _from_here(KIOSK_SOURCES if kiosk else SOURCES):
        return None
    response = flask.jsonify({"error": "refused: this request was sent from another site; "
                                       "open onemap and do it from there"})
    response.status_code = 403
    return response


def _from_here(sources: tuple[str, ...]) -> bool:
    site = flask.request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in sources
    origin = flask.request.headers.get("Origin")
    if origin is None:
        return True  # not a browser, or an older one navigating: nothing is claimed
    return urlsplit(origin).netloc == flask.request.host
