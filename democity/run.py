"""What ``onemap generate`` and ``onemap demo`` (``make data``) run: the city generated as of
now (or a given moment) with a row counter per step, and loaded through the normal loads in
place of a city of another moment."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from democity.city import City, default_folder, generate, is_loaded, load_city, local_now
from onemap.console import console, print_load_report, step_counter


def generate_with_progress(size: str, seed: int, out: Path | None, settings,
                           as_of=None) -> City:
    """Generate a city as of ``as_of`` (naive local time; default now in the settings'
    zone) into the home folder's default place without ``out``, counting rows per step."""
    as_of = local_now(settings.timezone) if as_of is None else as_of
    with step_counter("generate") as tick:
        return generate(size, seed, out or default_folder(settings.home, size, seed), tick,
                        as_of=as_of)


def demo_city(url: str, settings, size: str, seed: int, as_of=None) -> None:
    """What ``make data`` does: the city as of ``as_of`` (default now), generated unless its
    files are there already and loaded unless it is loaded already. A city loaded before as
    of another time is replaced (a demo loaded days ago is days old: this makes it new)."""
    as_of = local_now(settings.timezone) if as_of is None else np.datetime64(as_of, "s")
    city = City(default_folder(settings.home, size, seed))
    if city.as_of != as_of:
        city = generate_with_progress(size, seed, None, settings, as_of)
    name = f"demo city {size.upper()} (seed {seed}) as of {str(as_of).replace('T', ' ')}"
    if is_loaded(url, city):
        console().print(f"{name} is already loaded")
        return
    with step_counter("load") as tick:
        reports = load_city(url, city, settings.timezone, tick)
    for report in reports:
        print_load_report(report)
    console().print(f"{name} loaded")
