"""The view cache shares a view only between askers with the same scope and rights, drops it
when a new batch lands or its seconds run out, keeps no failure, and lets identical
requests arriving together read the database once."""

from __future__ import annotations

import threading
import time

import pytest

import layers.view
from layers.view import ViewCache
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

    def fake_view(engine, params, zone, layers, who):
        calls.append((who.name, dict(params)))
        time.sleep(0.05)
        return {"for": who.name, "params": dict(params)}

    monkeypatch.setattr(layers.view, "view", fake_view)
    return calls


def ask(cache, who, as_of="t1", **params):
    return cache.view(None, {"range": "30d", **params}, "Asia/Shanghai", {"units"}, who, as_of)


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
    cache.view(None, {"range": "30d"}, "Asia/Shanghai", {"units", "iot"}, CENTRE, "t1")
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

    def flaky(*args):
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


def test_size_is_bounded(reads):
    cache = ViewCache(seconds=30, size=3)
    for index in range(5):
        ask(cache, CENTRE, scope=f"u{index}")
    ask(cache, CENTRE, scope="u0")  # pushed out by the newer ones
    assert len(reads) == 6
