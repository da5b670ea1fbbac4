"""Screens that follow the data: a page holds an ask for the data's version open
(``/api/changes?since=…&wait=…``, answered by the server as soon as the version moves,
``layers.changes.Latest``) and redraws its view when the version moved past the one its
view was drawn at — an alarm raised, a device offline or online, a case written or a load
committed shows within about a second, and an idle page asks about once every
``HOLD_S`` seconds. A server holding as many asks as it may answers at once instead, and
its screens ask once a second. The asking is ``assets/push.js``'s.

A page puts :func:`watchers` in its layout, lists ``Input(changed(prefix), "data")`` among
its view callback's inputs and ``State(drawn(prefix), "data")`` among its states, and returns
the version it drew at into ``drawn(prefix)`` (:func:`layers.changes.current`, read before
the view). When :func:`devices_only` says the view is redrawn because devices' statuses
changed and for nothing else, it redraws only what shows devices (the alarm list, the
ticker, the cards, a map with devices on it), the rest of the page staying as it is.
"""

from __future__ import annotations

from dash import Input, Output, clientside_callback, ctx, dcc

from layers.changes import HOLD_S, moved

WATCH_MS = 1000  # the watch's heartbeat (in the page: it asks nothing by itself)
CHANGES_PATH = "/api/changes"


def drawn(prefix: str) -> str:
    """The store of the version the page's view was drawn at."""
    return f"{prefix}drawn-version"


def changed(prefix: str) -> str:
    """The store the watcher writes a newer version into: the view's trigger."""
    return f"{prefix}changed-version"


def _tick(prefix: str) -> str:
    return f"{prefix}watch-changes"


def _beat(prefix: str) -> str:
    return f"{prefix}watch-beat"


def watchers(prefix: str) -> list:
    """The components of a page's watch (``prefix``: the page's own, ids being app-wide)."""
    return [dcc.Store(id=drawn(prefix)), dcc.Store(id=changed(prefix)), dcc.Store(id=_beat(prefix)),
            dcc.Interval(id=_tick(prefix), interval=WATCH_MS)]


def watch(prefix: str) -> None:
    """Register the page's watcher: at each heartbeat and each view drawn, ``push.js``
    keeps an ask out and writes a newer version than the drawn one into the trigger store
    (``set_props``: an output of this callback would close a loop through the view's)."""
    clientside_callback(
        f"""function(n, drawn) {{
            window.onemapPush.beat('{prefix}', '{changed(prefix)}', drawn, '{CHANGES_PATH}',
                                   {HOLD_S});
            return window.dash_clientside.no_update;
        }}""",
        Output(_beat(prefix), "data"), Input(_tick(prefix), "n_intervals"),
        Input(drawn(prefix), "data"),
        prevent_initial_call=True,
    )


def devices_only(prefix: str, drawn_at: str | None, version: str) -> bool:
    """Whether the view callback runs for the page's watch alone (no other input of it
    changed) and only the IoT feed moved between the drawn version and ``version``."""
    return (set(ctx.triggered_prop_ids) == {f"{changed(prefix)}.data"}
            and moved(drawn_at, version) == {"iot"})
