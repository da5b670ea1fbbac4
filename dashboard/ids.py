"""Component ids, in one place so pages and callbacks cannot drift apart."""

MAP = "map"
BANNER = "banner"
EMPTY = "empty-state"
HEADER = "header"
