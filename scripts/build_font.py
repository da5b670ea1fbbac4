"""Build the dashboard's own CJK web font: a subset of Noto Sans CJK SC (Regular) as WOFF2.

The pages must not depend on the fonts of the machine that shows them (command centres run
on locked-down intranet PCs), so the app serves this file from ``dashboard/assets/fonts``.
The subset covers ASCII, Latin-1, general punctuation, common symbols, CJK punctuation,
full-width forms, all of GB2312 (6,763 hanzi) and every other character of the project's
own texts: the message table, the demo city's vocabularies and the real place names under
``data/`` (坪山 has a 坣). Other rare characters fall back to the next font of the CSS stack.

Needs ``fonttools[woff]`` and the Debian package ``fonts-noto-cjk``. Run from the checkout:
``python scripts/build_font.py`` (about a minute). The result is committed; rebuild only when
the character set changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FACE = "Noto Sans CJK SC"
TARGET = ROOT / "dashboard" / "assets" / "fonts"
TEXTS = ("dashboard/*.py", "dashboard/pages/*.py", "democity/*.py", "etl/presets/**/*.yaml",
         "data/**/*.csv")
NAME = "onemap-sans-sc.woff2"
# Blocks beyond GB2312 that the pages print: km², ·, —, ›, arrows, ①, ●, full-width forms.
RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2100, 0x218F), (0x2190, 0x21FF),
          (0x2460, 0x24FF), (0x25A0, 0x25FF), (0x3000, 0x303F), (0xFF00, 0xFFEF))


def gb2312() -> set[int]:
    """Every code point of GB2312 (its two-byte rows 0xA1-0xF7)."""
    found = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                found.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return found


def project_text() -> set[int]:
    """The characters of the project's own texts (see ``TEXTS``)."""
    return {ord(c) for pattern in TEXTS for path in ROOT.glob(pattern)
            for c in path.read_text(encoding="utf-8") if ord(c) > 0x7E}


def codepoints() -> set[int]:
    """The characters the subset keeps."""
    wanted = gb2312() | project_text()
    for first, last in RANGES:
        wanted.update(range(first, last + 1))
    return wanted


def build(source: Path = SOURCE, target: Path = TARGET / NAME) -> Path:
    """Subset the SC face of ``source`` to ``codepoints()`` and write it as WOFF2."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    font = next(f for f in TTCollection(str(source)).fonts
                if f["name"].getDebugName(4) == FACE)
    options = subset.Options(flavor="woff2", hinting=False, name_IDs=["*"],
                             name_languages=["*"], notdef_outline=True)
    # Unhinted outlines are a fifth smaller; hinting matters little at today's pixel sizes.
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints())
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(target), options)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--target", type=Path, default=TARGET / NAME)
    args = parser.parse_args()
    path = build(args.source, args.target)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
