"""Screens that follow the data: a page polls the data's version (``/api/changes``, a few
rows answered from the server's memory between changes) about once a second and redraws its
view only when the version moved past the one its view was drawn at — an alarm raised, a
device offline or online, a case written or a load committed shows within about two seconds,
and an idle page costs one small request a second.

A page puts :func:`watchers` in its layout, lists ``Input(changed(prefix), "data")`` among
its view callback's inputs and returns the version it drew at into ``drawn(prefix)``
(:func:`layers.changes.current`, read before the view).
"""

from __future__ import annotations

from dash import Input, Output, State, clientside_callback, dcc

WATCH_MS = 1000
CHANGES_PATH = "/api/changes"


def drawn(prefix: str) -> str:
    """The store of the version the page's view was drawn at."""
    return f"{prefix}drawn-version"


def changed(prefix: str) -> str:
    """The store the watcher writes a newer version into: the view's trigger."""
    return f"{prefix}changed-version"


def _tick(prefix: str) -> str:
    return f"{prefix}watch-changes"


def watchers(prefix: str) -> list:
    """The components of a page's watch (``prefix``: the page's own, ids being app-wide)."""
    return [dcc.Store(id=drawn(prefix)), dcc.Store(id=changed(prefix)),
            dcc.Interval(id=_tick(prefix), interval=WATCH_MS)]


def watch(prefix: str) -> None:
    """Register the page's watcher: each tick asks for the version, unless the last ask is
    still out (a slow server gets one ask at a time, never a queue of them), and when the
    answer differs from the drawn version and was not asked for already (a redraw slower
    than a tick is not asked for again), writes it into the trigger store. The answer is
    written when it comes (``set_props``), not returned: the tick after would supersede a
    returned answer still on its way. A failed ask changes nothing: the next tick asks
    again."""
    clientside_callback(
        f"""function(n, drawn) {{
            const watch = (window.onemapWatch = window.onemapWatch || {{}});
            const mine = (watch['{prefix}'] = watch['{prefix}'] || {{}});
            mine.drawn = drawn;
            if (!drawn || mine.out) {{ return window.dash_clientside.no_update; }}
            mine.out = true;
            fetch('{CHANGES_PATH}', {{cache: 'no-store', credentials: 'same-origin'}})
                .then(answer => answer.ok ? answer.json() : null)
                .then(answer => {{
                    const version = answer && answer.version;
                    if (version && version !== mine.drawn && version !== mine.asked) {{
                        mine.asked = version;
                        window.dash_clientside.set_props('{changed(prefix)}', {{data: version}});
                    }}
                }})
                .catch(() => null)
                .finally(() => {{ mine.out = false; }});
            return window.dash_clientside.no_update;
        }}""",
        Output(changed(prefix), "data"), Input(_tick(prefix), "n_intervals"),
        State(drawn(prefix), "data"),
        prevent_initial_call=True,
    )
