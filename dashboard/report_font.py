"""The report's own font, embedded: the dashboard's CJK web font (``assets/fonts``, built by
``scripts/build_font.py``) cut down to the characters of one document and written into it
as a ``data:`` URL, so that the HTML report reads the same on a machine without Chinese
fonts and the PDF needs nothing from outside (WeasyPrint embeds it again, subset).

The cut keeps horizontal text only (no vertical metrics, no OpenType layout tables): it
takes a quarter of the time, and the report writes nothing else.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

SOURCE = Path(__file__).parent / "assets" / "fonts" / "onemap-sans-sc.woff2"
FAMILY = "Onemap Report Sans"
# The embedded face first; characters it lacks fall back to a system CJK face.
STACK = f'"{FAMILY}", "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif'
DROPPED = ["GSUB", "GPOS", "GDEF", "BASE", "vhea", "vmtx", "VORG", "DSIG"]


@lru_cache(maxsize=1)
def _font_bytes() -> bytes:
    """The web font decoded from WOFF2 once per process (bytes: nothing to share wrongly)."""
    font = TTFont(str(SOURCE))
    font.flavor = None
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def subset_font(text: str) -> bytes:
    """The font holding the characters of ``text`` (those it has), as WOFF."""
    font = TTFont(io.BytesIO(_font_bytes()), lazy=True)
    options = subset.Options(flavor="woff", hinting=False, notdef_outline=True,
                             layout_features=[], drop_tables=DROPPED)
    cutter = subset.Subsetter(options)
    cutter.populate(text=text)
    cutter.subset(font)
    out = io.BytesIO()
    subset.save_font(font, out, options)
    return out.getvalue()


def font_face(text: str) -> str:
    """A CSS ``@font-face`` of ``FAMILY`` holding the characters of ``text``."""
    data = base64.b64encode(subset_font(text)).decode("ascii")
    return (f'@font-face {{ font-family: "{FAMILY}"; font-weight: normal; '
            f'src: url("data:font/woff;base64,{data}") format("woff"); }}')
