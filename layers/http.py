"""The read API on a Flask server: routes parse the request and call ``layers.api``."""

from __future__ import annotations

import re

import flask

from layers.api import Api, Response
from layers.openapi import openapi_document


def register(server: flask.Flask, api: Api) -> None:
    """Mount the OGC API – Features routes, the dashboard data API and vector tiles."""
    bp = flask.Blueprint("onemap_api", __name__)

    def base() -> str:
        return flask.request.host_url.rstrip("/")

    def params() -> dict:
        return {k: v if len(v) > 1 else v[0] for k, v in flask.request.args.lists()}

    ogc = {
        "/conformance": api.conformance,
        "/collections": lambda: api.collections(base()),
        "/collections/<layer_id>": lambda layer_id: api.collection(base(), layer_id),
        "/collections/<layer_id>/items": lambda layer_id: api.items(base(), layer_id, params()),
        "/collections/<layer_id>/items/<path:fid>":
            lambda layer_id, fid: api.item(base(), layer_id, fid),
    }
    # The OGC API lives at the root (as /collections…) and, for clients that resolve paths
    # against their landing page, also below /ogc.
    routes = {
        "/ogc/": lambda: api.landing(base()),
        **ogc,
        **{"/ogc" + rule: view for rule, view in ogc.items()},
        "/api/kpi": lambda: api.kpi(params()),
        "/api/hotspots": lambda: api.hotspots(params()),
        "/api/hexbins": lambda: api.hexbins(params()),
        "/tiles/<layer_id>/<int:z>/<int:x>/<int:y>.pbf":
            lambda layer_id, z, x, y: api.tile(layer_id, z, x, y, params(),
                                               flask.request.headers.get("If-None-Match")),
        "/export/<layer_id>.<fmt>": lambda layer_id, fmt: api.export(layer_id, fmt, params()),
    }
    for rule, view in routes.items():
        endpoint = re.sub(r"\W+", "_", rule).strip("_")
        bp.add_url_rule(rule, endpoint, _adapt(api, view))
    for rule in ("/openapi.json", "/ogc/openapi.json"):
        bp.add_url_rule(rule, re.sub(r"\W+", "_", rule).strip("_"),
                        lambda: flask.jsonify(openapi_document(base(), api.catalog)))
    server.register_blueprint(bp)


def _adapt(api: Api, view):
    def handler(**kwargs):
        return to_flask(api.handle(lambda: view(**kwargs)))
    return handler


def to_flask(response: Response) -> flask.Response:
    result = flask.Response(response.body, status=response.status,
                            content_type=response.content_type)
    result.headers.update(response.headers)
    return result
