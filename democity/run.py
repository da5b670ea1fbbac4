"""What ``onemap generate`` and ``onemap demo`` (``make data``) run: the city generated with
a row counter per step, and loaded once through the normal loads."""

from __future__ import annotations

from pathlib import Path

from democity.city import City, default_folder, generate, is_loaded, load_city
from onemap.console import console, print_load_report, step_counter


def generate_with_progress(size: str, seed: int, out: Path | None, settings) -> City:
    """Generate a city (into the home folder's default place without ``out``), counting
    rows per step."""
    with step_counter("generate") as tick:
        return generate(size, seed, out or default_folder(settings.home, size, seed), tick)


def demo_city(url: str, settings, size: str, seed: int) -> None:
    """What ``make data`` does: generate the city if needed, load it if not loaded."""
    city = City(default_folder(settings.home, size, seed))
    if not city.complete:
        city = generate_with_progress(size, seed, None, settings)
    if is_loaded(url, city):
        console().print(f"demo city {size.upper()} (seed {seed}) is already loaded")
        return
    with step_counter("load") as tick:
        reports = load_city(url, city, settings.timezone, tick)
    for report in reports:
        print_load_report(report)
