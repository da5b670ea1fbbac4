"""Every label the UI shows, in Chinese (default) and English: the one message table."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh": "一张图", "en": "One Map"},
    "app.subtitle": {"zh": "基层治理一张图", "en": "One-map governance"},
    "empty.title": {"zh": "尚未加载数据", "en": "No data loaded yet"},
    "empty.body": {
        "zh": "数据库中还没有行政区划。请在项目目录运行 make demo 生成并加载演示城市。",
        "en": "The database holds no admin units yet. Run make demo in the project folder "
              "to generate and load the demo city.",
    },
    "db.down": {"zh": "数据库不可用，正在自动重试…", "en": "Database unavailable, retrying…"},
    "error.generic": {"zh": "出现错误，请稍后再试。", "en": "Something went wrong; try again."},
    "map.outline": {"zh": "辖区边界", "en": "District outline"},
    "unit.area": {"zh": "面积", "en": "Area"},
    "level.1": {"zh": "区", "en": "District"},
    "level.2": {"zh": "街道", "en": "Street"},
    "level.3": {"zh": "社区", "en": "Community"},
    "level.4": {"zh": "网格", "en": "Grid"},
}

LANGUAGES = ("zh", "en")


def t(key: str, lang: str = "zh") -> str:
    """The label ``key`` in ``lang``; an unknown key shows itself rather than failing."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["zh"]


def user_message(exc: Exception, lang: str = "zh") -> str:
    """The one place where errors become words on the screen (never a traceback)."""
    if isinstance(exc, OperationalError | DBAPIError):
        return t("db.down", lang)
    return t("error.generic", lang)
