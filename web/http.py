"""The read API on a Flask server: routes parse the request and call ``web.api``."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import flask

from layers.errors import NotFound
from onemap.principal import Principal
from web.api import Api, Response
from web.auth import SIGN_IN_FIRST, refused
from web.openapi import openapi_document


def register(server: flask.Flask, api: Api, principal: Callable[[], Principal | None],
             base_url: str) -> None:
    """Mount the OGC API – Features routes, the dashboard data API and vector tiles.
    ``principal`` tells who sent the current request (None: nobody signed in → 401);
    absolute links start with ``base_url``, the configured public address (never the
    request's Host header, which the client chooses)."""
    bp = flask.Blueprint("onemap_api", __name__)

    def base() -> str:
        return base_url

    def params() -> dict:
        return {k: v if len(v) > 1 else v[0] for k, v in flask.request.args.lists()}

    ogc = {
        "/conformance": lambda who: api.conformance(),
        "/collections": lambda who: api.collections(who, base()),
        "/collections/<layer_id>": lambda who, layer_id: api.collection(who, base(), layer_id),
        "/collections/<layer_id>/items":
            lambda who, layer_id: api.items(who, base(), layer_id, params()),
        "/collections/<layer_id>/items/<path:fid>":
            lambda who, layer_id, fid: api.item(who, base(), layer_id, fid, params()),
    }
    # The OGC API lives at the root (as /collections…) and, for clients that resolve paths
    # against their landing page, also below /ogc.
    routes = {
        "/ogc/": lambda who: api.landing(base()),
        **ogc,
        **{"/ogc" + rule: view for rule, view in ogc.items()},
        "/api/kpi": lambda who: api.kpi(who, params()),
        "/api/workbench": lambda who: api.workbench(who, params()),
        "/api/workers": lambda who: api.workers(who, params()),
        "/api/hotspots": lambda who: api.hotspots(who, params()),
        "/api/hexbins": lambda who: api.hexbins(who, params()),
        "/api/changes": lambda who: api.changes(who, params()),
        "/api/search": lambda who: api.search(who, params()),
        "/api/supervision": lambda who: (
            api.supervise(who, flask.request.get_json(silent=True))
            if flask.request.method == "POST" else api.supervisions(who, params())),
        "/api/merges": lambda who: (
            api.decide_merge(who, flask.request.get_data())
            if flask.request.method == "POST" else api.merges(who, params())),
        # Signed: a negative tile is a 400 from the handler, not a miss that falls through.
        "/tiles/<layer_id>/<int(signed=True):z>/<int(signed=True):x>/<int(signed=True):y>.pbf":
            lambda who, layer_id, z, x, y: api.tile(
                who, layer_id, z, x, y, params(), flask.request.headers.get("If-None-Match")),
        "/export/<layer_id>.<fmt>":
            lambda who, layer_id, fmt: api.export(who, layer_id, fmt, params()),
    }
    # Anything else below the API's prefixes is a JSON 404, not the dashboard's page (which
    # answers every other path with 200 for its client-side routing).
    routes.update({f"/{prefix}/<path:rest>": _unknown for prefix in API_PREFIXES})
    for rule, view in routes.items():
        endpoint = re.sub(r"\W+", "_", rule).strip("_")
        bp.add_url_rule(rule, endpoint, _adapt(api, view, principal),
                        methods=WRITES.get(rule, ("GET",)))
    for rule in ("/openapi.json", "/ogc/openapi.json"):
        bp.add_url_rule(rule, re.sub(r"\W+", "_", rule).strip("_"),
                        lambda: flask.jsonify(openapi_document(base(), api.catalog)))
    server.register_blueprint(bp)


API_PREFIXES = ("api", "tiles", "export", "collections", "ogc")
# The routes that also take a write (checked by the gate's CSRF refusal like any).
WRITES = {"/api/supervision": ("GET", "POST"), "/api/merges": ("GET", "POST")}


def _unknown(who: Principal, rest: str) -> Response:
    raise NotFound(f"no such resource: {flask.request.path}")


def _adapt(api: Api, view, principal: Callable[[], Principal | None]):
    def handler(**kwargs):
        who = principal()
        if who is None:
            return refused(SIGN_IN_FIRST)
        response = api.handle(who, lambda: view(who, **kwargs))
        if response.status >= 400 and _navigated_to_export():
            response = error_page(response)
        return to_flask(response)
    return handler


def _navigated_to_export() -> bool:
    """Whether a person's browser opened an export (the dashboard's export links): a
    refusal is then a page to read, not JSON shown raw in a tab."""
    return (flask.request.path.startswith("/export/")
            and flask.request.headers.get("Sec-Fetch-Mode") == "navigate")


# What a refused export tells the person who clicked it, by status (zh, en).
PAGE_TITLES = {
    400: ("导出参数有误", "The export's parameters are not valid"),
    403: ("无权导出", "You may not export this"),
    404: ("没有这个图层", "No such layer"),
    429: ("正在导出，请稍后再试", "Exports are busy: try again shortly"),
    503: ("数据库暂不可用，请稍后再试", "The database is unavailable: try again shortly"),
}


def error_page(response: Response) -> Response:
    """A refused export as a page in both languages: what was refused and why (the API's
    message, as text), when to try again, and the way back to the map; the status and
    headers (Retry-After) stay."""
    try:
        message = json.loads(response.body)["error"]
    except (TypeError, ValueError, KeyError):
        message = ""
    zh, en = PAGE_TITLES.get(response.status, ("无法导出", "The export was refused"))
    wait = response.headers.get("Retry-After")
    again = (f"<p>请 {html.escape(wait)} 秒后再试 · Try again in {html.escape(wait)} s.</p>"
             if wait else "")
    body = (f"<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\">"
            f"<title>{zh} · onemap</title></head><body>"
            f"<h1>{zh}</h1><p lang=\"en\">{en}</p>"
            f"<p id=\"reason\" lang=\"en\">{html.escape(message)}</p>{again}"
            f"<p>地图仍在原来的标签页中 · The map is still open in its own tab. "
            f"<a href=\"/\">打开地图 · Open the map</a></p></body></html>")
    return Response(response.status, body, "text/html; charset=utf-8", response.headers)


def to_flask(response: Response) -> flask.Response:
    result = flask.Response(response.body, status=response.status,
                            content_type=response.content_type)
    result.headers.update(response.headers)
    return result
