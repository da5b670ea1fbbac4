"""Masks for personal fields, applied in SQL so every output — items, tiles' properties,
the case detail and every export format — gets the same masked value: 张** and 138****1234."""

from __future__ import annotations

from layers.sql import ident

# {c} is the column expression. Names keep their first character; phones of 11 or more
# characters keep the first 3 and last 4 (138****1234), shorter ones are all stars.
MASK_SQL = {
    "name": "CASE WHEN {c} IS NULL OR {c} = '' THEN {c} "
            "ELSE left({c}, 1) || repeat('*', greatest(char_length({c}) - 1, 1)) END",
    "phone": "CASE WHEN {c} IS NULL OR {c} = '' THEN {c} "
             "WHEN char_length({c}) >= 11 THEN left({c}, 3) || '****' || right({c}, 4) "
             "ELSE repeat('*', char_length({c})) END",
}


def personal_columns(fields: tuple[tuple[str, str], ...], mode: str | None,
                     alias: str = "t") -> list[str]:
    """SELECT items for a layer's personal fields: none, masked or in clear."""
    if mode is None:
        return []
    if mode == "clear":
        return [f"{alias}.{ident(column)}" for column, _ in fields]
    return [f"{MASK_SQL[kind].format(c=f'{alias}.{ident(column)}')} AS {ident(column)}"
            for column, kind in fields]
