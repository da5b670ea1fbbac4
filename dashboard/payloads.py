"""Callback requests are checked before Dash sees them: a body that is not what a page of
ours sends (``{}``, ``[]``, an unknown output, inputs that do not match the callback, values
of the wrong type) is answered 400 with a JSON reason, instead of failing inside Dash or a
callback with a 500 and a traceback in the log.

What a callback may receive is declared here, per component id and property, next to the
check that uses it; the callbacks themselves then parse only well-formed values.
"""

from __future__ import annotations

from collections.abc import Callable

import flask
from dash import Dash
from dash._utils import split_callback_id

from dashboard import ids

PATH = "/_dash-update-component"
# No page of ours sends a request body near this size (a view's callback is a few KB); a
# larger one is refused before it is read, parsed or handed on (a 600,000-item filter list
# once kept a worker busy for 40 s and grew it past a gigabyte).
MAX_BODY_BYTES = 1 << 20

Check = Callable[[object], bool]


def _text(value) -> bool:
    return isinstance(value, str)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _fields(**checks: Check) -> Check:
    """An object holding at least these fields, each passing its check."""
    return lambda value: isinstance(value, dict) and all(
        name in value and check(value[name]) for name, check in checks.items())


# What a page of ours sends for each input and state of a server callback.
SHAPES: dict[tuple[str, str], Check] = {
    ("_pages_location", "pathname"): _optional(_text),  # Dash Pages' router
    ("_pages_location", "search"): _optional(_text),
    (ids.URL, "search"): _optional(_text),
    (ids.RANGE, "value"): _optional(_text),
    (ids.CASE_ORDER, "value"): _optional(_text),
    (ids.CATEGORY, "value"): _optional(_texts),
    (ids.SUBCATEGORY, "value"): _optional(_texts),
    (ids.CHANNEL, "value"): _optional(_texts),
    (ids.STATUS, "value"): _optional(_texts),
    (ids.LAYER_TOGGLES, "value"): _optional(_texts),
    (ids.METRIC, "value"): _optional(_text),
    (ids.REFRESH, "n_intervals"): _optional(_count),
    ("case", "n_clicks"): _optional(_count),  # each case row's button (pattern id)
    ("alarm-case", "n_clicks"): _optional(_count),  # an alarm's case, in the alarm list
    ("alarm-case-detail", "n_clicks"): _optional(_count),  # … and in the alarm's panel
    (ids.ALARM_ACK, "n_clicks"): _optional(_count),
    (ids.ALARM_CASE, "n_clicks"): _optional(_count),
    (ids.ALARM_CONFIRM, "submit_n_clicks"): _optional(_count),
    (ids.ALARM_PENDING, "data"): _optional(_text),
    (ids.ALARM_NOTE, "value"): _optional(_text),
    (ids.ALARM_SINCE, "data"): _optional(_text),
    ("desk-drawn-version", "data"): _optional(_text),
    (ids.WB_URL, "search"): _optional(_text),
    (ids.WB_REFRESH, "n_intervals"): _optional(_count),
    # The workbench's 督办 forms (dashboard.workbench.urge_form), of the case and the unit.
    **{(f"wb-urge-{target}-{part}", prop): check for target in ("case", "unit")
       for part, prop, check in (("send", "n_clicks", _optional(_count)),
                                 ("kind", "value", _optional(_text)),
                                 ("note", "value", _optional(_text)))},
    ("merge-decide", "n_clicks"): _optional(_count),  # the 并案 buttons (pattern id)
    ("merge-ask", "data"): _optional(_text),  # the view whose 并案 panel to draw
    ("bs-" + ids.REFRESH, "n_intervals"): _optional(_count),
    ("bs-" + ids.TOUR_STATE, "data"): _fields(index=_count, on=lambda v: isinstance(v, bool)),
    ("bs-screen", "data"): _optional(_fields(w=_number, h=_number)),
    # The version a page's watch wrote for its view to redraw at (dashboard.push).
    ("desk-changed-version", "data"): _optional(_text),
    ("bs-changed-version", "data"): _optional(_text),
    # … and the one the wall's view was drawn at (only devices redrawn when only they moved).
    ("bs-drawn-version", "data"): _optional(_text),
    ("bs-lang", "data"): _text,
    ("bs-range", "data"): _optional(_text),
}


class Malformed(ValueError):
    """A callback request no page of ours would send."""


def install_payload_check(app: Dash) -> None:
    """Check every callback request against ``app``'s callbacks before Dash dispatches it
    (registered after the sign-in gate, so nobody learns more than 401 unsigned)."""

    def check():
        if flask.request.path != PATH or flask.request.method != "POST":
            return None
        body = flask.request.get_json(silent=True)
        try:
            check_body(body, app.callback_map)
        except Malformed as exc:
            response = flask.jsonify({"error": f"malformed callback request: {exc}"})
            response.status_code = 400
            return response
        return None

    app.server.before_request(check)
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.server.errorhandler(413)
    def too_large(_error):
        response = flask.jsonify({"error": f"request body over {MAX_BODY_BYTES:,} bytes"})
        response.status_code = 413
        return response


def check_body(body, callbacks: dict) -> None:
    """Raise :class:`Malformed` unless ``body`` calls a server callback of ``callbacks``
    with the outputs, inputs and state it declares, each value of the declared shape."""
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    output = body.get("output")
    declared = callbacks.get(output) if isinstance(output, str) else None
    if declared is None or declared.get("callback") is None:
        raise Malformed("no such callback")
    _check_outputs(body.get("outputs"), output)
    _check_items(body.get("inputs"), declared["inputs"], "inputs")
    _check_items(body.get("state", []), declared["state"], "state")
    changed = body.get("changedPropIds", [])
    if not _texts(changed):
        raise Malformed("changedPropIds is not a list of names")


def _check_outputs(outputs, output: str) -> None:
    expected = split_callback_id(output)
    if isinstance(expected, dict):
        expected, outputs = [expected], [outputs]
    if not isinstance(outputs, list) or len(outputs) != len(expected):
        raise Malformed("the outputs do not match the callback")
    for sent, wanted in zip(outputs, expected, strict=True):
        if not isinstance(sent, dict) or (sent.get("id"), _plain(sent.get("property"))) != (
                wanted["id"], _plain(wanted["property"])):
            raise Malformed("the outputs do not match the callback")


def _plain(prop) -> str | None:
    """A property without the ``@hash`` of an output that allows duplicates."""
    return prop.split("@")[0] if isinstance(prop, str) else None


def _check_items(items, declared: list[dict], what: str) -> None:
    if not isinstance(items, list) or len(items) != len(declared):
        raise Malformed(f"the {what} do not match the callback")
    for item, wanted in zip(items, declared, strict=True):
        if wanted["id"].startswith("{"):  # a pattern (ALL): a list of matching components
            if not isinstance(item, list):
                raise Malformed(f"the {what} do not match the callback")
            for one in item:
                _check_value(one, None, wanted["property"], what)
        else:
            _check_value(item, wanted["id"], wanted["property"], what)


def _check_value(item, component: str | None, prop: str, what: str) -> None:
    """One input or state: the declared component (any of a pattern's when ``component``
    is None) and property, and a value of its shape."""
    if not isinstance(item, dict) or item.get("property") != prop:
        raise Malformed(f"the {what} do not match the callback")
    sent = item.get("id")
    if component is None:
        if not isinstance(sent, dict) or not isinstance(sent.get("type"), str):
            raise Malformed(f"the {what} do not match the callback")
        component = sent["type"]
    elif sent != component:
        raise Malformed(f"the {what} do not match the callback")
    check = SHAPES.get((component, prop))
    if check is not None and not check(item.get("value")):
        raise Malformed(f"{component}.{prop} has a value of the wrong type")
