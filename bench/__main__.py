"""Run every benchmark module in bench/ (``make bench``)."""

import importlib
import pkgutil

import bench

for info in pkgutil.iter_modules(bench.__path__):
    if info.name.startswith("bench_"):
        print(f"== {info.name}")
        importlib.import_module(f"bench.{info.name}").main()
