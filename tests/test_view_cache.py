"""The view cache shares a view only between askers with the same scope and rights, drops it
when a new batch lands or its seconds run out, keeps no failure, and lets identical
requests arriving together read the database once."""

from __future__ import annotations

import gc
import sys
import threading
import time
import types

import pytest

import layers.view
from layers.filters import read_filters
from layers.view import ViewCache
from onemap.database import make_engine
from onemap.principal import Principal

STREET_A = Principal("a", "street_official", "440310001")
STREET_A2 = Principal("a2", "street_official", "440310001")
STREET_B = Principal("b", "street_official", "440310002")
CENTRE = Principal("c", "command_center")
ADMIN = Principal("root", "admin")
KIOSK = Principal("k", "kiosk")


@pytest.fixture
def reads(monkeypatch):
    """Count the reads behind the cache (each answer names who caused it)."""
    calls: list[tuple] = []

    def fake_view(engine, filters, zone, layers, who, **options):
        calls.append((who.name, filters))
        time.sleep(0.05)
        return {"for": who.name, "filters": filters}

    monkeypatch.setattr(layers.view, "view", fake_view)
    return calls


def ask(cache, who, as_of="t1", **params):
    return cache.view(None, read_filters({"range": "30d", **params}), "Asia/Shanghai",
                      {"units"}, who, as_of)


def test_same_scope_and_rights_share_a_view(reads):
    cache = ViewCache(seconds=30)
    first = ask(cache, STREET_A)
    assert ask(cache, STREET_A2) is first
    assert len(reads) == 1


@pytest.mark.parametrize("other", [STREET_B, CENTRE, ADMIN, KIOSK])
def test_other_scope_or_rights_never_share(reads, other):
    cache = ViewCache(seconds=30)
    ask(cache, STREET_A)
    assert ask(cache, other)["for"] == other.name
    assert len(reads) == 2


def test_centre_and_admin_differ_in_personal_rights(reads):
    cache = ViewCache(seconds=30)
    assert ask(cache, CENTRE)["for"] == "c"
    assert ask(cache, ADMIN)["for"] == "root"


def test_filters_layers_and_new_batches_are_other_views(reads):
    cache = ViewCache(seconds=30)
    ask(cache, CENTRE)
    ask(cache, CENTRE, status="open")
    cache.view(None, read_filters({"range": "30d"}), "Asia/Shanghai", {"units", "iot"},
               CENTRE, "t1")
    ask(cache, CENTRE, as_of="t2")  # a load committed since: read again
    assert len(reads) == 4


def test_entries_expire(reads):
    cache = ViewCache(seconds=0.1)
    ask(cache, CENTRE)
    time.sleep(0.15)
    ask(cache, CENTRE)
    assert len(reads) == 2


def test_zero_seconds_turns_it_off(reads):
    cache = ViewCache(seconds=0)
    ask(cache, CENTRE)
    ask(cache, CENTRE)
    assert len(reads) == 2


def test_failures_are_not_kept(monkeypatch):
    cache = ViewCache(seconds=30)
    outcomes = iter([RuntimeError("database away"), {"ok": True}])

    def flaky(*args, **kwargs):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(layers.view, "view", flaky)
    with pytest.raises(RuntimeError):
        ask(cache, CENTRE)
    assert ask(cache, CENTRE) == {"ok": True}


def test_identical_requests_together_read_once(reads):
    cache = ViewCache(seconds=30)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(ask(cache, KIOSK)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1
    assert all(answer is answers[0] for answer in answers)


def big(reads_list):
    """A fake view of about 100 kB (a string of its own per answer)."""

    def fake_view(engine, filters, zone, layers, who, **options):
        reads_list.append((who.name, filters))
        return {"for": who.name, "blob": "x" * 100_000 + str(len(reads_list))}

    return fake_view


def test_bytes_are_bounded(monkeypatch):
    calls: list = []
    monkeypatch.setattr(layers.view, "view", big(calls))
    cache = ViewCache(seconds=30, max_bytes=350_000)
    for index in range(5):
        ask(cache, CENTRE, scope=f"u{index}")
    assert len(cache) == 3 and cache.nbytes <= 350_000
    measured = sum(held(data) for _, _, data in cache._entries.values())
    assert measured <= 350_000 and cache.nbytes == pytest.approx(measured, rel=0.01)
    ask(cache, CENTRE, scope="u4")  # the newest is kept
    assert len(calls) == 5
    ask(cache, CENTRE, scope="u0")  # pushed out by the newer ones
    assert len(calls) == 6


def test_a_view_larger_than_the_cache_is_not_kept(monkeypatch):
    calls: list = []
    monkeypatch.setattr(layers.view, "view", big(calls))
    cache = ViewCache(seconds=30, max_bytes=50_000)
    ask(cache, CENTRE)
    ask(cache, CENTRE)
    assert len(calls) == 2 and len(cache) == 0 and cache.nbytes == 0


def test_expired_entries_are_dropped_when_they_expire(monkeypatch):
    """Not only when newer ones push them out: the next use sweeps them all."""
    calls: list = []
    monkeypatch.setattr(layers.view, "view", big(calls))
    cache = ViewCache(seconds=0.2, max_bytes=10 * 2**20)
    for index in range(20):
        ask(cache, CENTRE, scope=f"u{index}")
    assert len(cache) == 20 and cache.nbytes > 2_000_000
    time.sleep(0.3)
    ask(cache, CENTRE, scope="other")
    assert len(cache) == 1 and cache.nbytes < 150_000


def held(value) -> int:
    """Bytes reachable from ``value``, measured through the garbage collector's view of
    references (not the way the cache measures)."""
    seen: set[int] = set()
    total, todo = 0, [value]
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        todo.extend(gc.get_referents(item))
    return total


ANALYST = Principal("an", "analyst")


def test_many_distinct_views_of_one_analyst_stay_within_the_bound(city_db):
    """An analyst walking through distinct views of the S city: what the cache keeps, as
    measured here, never exceeds its bytes, and the least recent views went first."""
    engine = make_engine(city_db)
    bound = 12 * 2**20
    cache = ViewCache(seconds=600, max_bytes=bound)
    views = [({"range": r, "status": s}, frozenset(wanted))
             for r in ("7d", "30d", "90d", "year", "all")
             for s in (None, "open", "closed")
             for wanted in ({"units"}, {"units", "hexbins", "hotspots", "facilities", "iot"})]
    sizes = []
    try:
        for params, wanted in views:
            data = cache.view(engine, read_filters(params), "Asia/Shanghai", set(wanted),
                              ANALYST, "t1")
            sizes.append(held(data))
            kept = [held(d) for _, _, d in cache._entries.values()]
            # The cache samples long lists: within a few percent of counting all.
            assert sum(kept) <= bound * 1.02 and cache.nbytes <= bound
    finally:
        engine.dispose()
    assert max(sizes) > 300_000  # real views, of a size that matters
    assert sum(sizes) > 3 * bound  # unbounded, they would hold this much
    assert 0 < len(cache) < len(views)
    newest = cache.view(None, read_filters(views[-1][0]), "Asia/Shanghai", set(views[-1][1]),
                        ANALYST, "t1")
    assert held(newest) == sizes[-1]  # answered from the cache (no engine to read with)
