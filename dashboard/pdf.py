"""HTML to PDF (WeasyPrint), fetching nothing: a report holds its style, font and map, and
the fetcher refuses every address but a ``data:`` URL, so no text in a report (a unit's
name, a category) can make the server ask another machine — or read a file — for it.
"""

from __future__ import annotations

from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher

ALLOWED = ("data:",)


class LocalOnly(URLFetcher):
    """WeasyPrint's fetcher for ``data:`` URLs only; any other address stops the rendering
    (:class:`FatalURLFetchingError`) and is kept in ``refused``."""

    def __init__(self):
        super().__init__(allowed_protocols=["data"], fail_on_errors=True)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        if not url.startswith(ALLOWED):
            self.refused.append(url)
            raise FatalURLFetchingError(f"a report fetches nothing: refused {url[:200]}")
        return super().fetch(url, headers)


def pdf_bytes(document: str) -> bytes:
    """The PDF of the HTML ``document`` (which must hold everything it shows)."""
    return HTML(string=document, url_fetcher=LocalOnly(), base_url=None).write_pdf()
