"""Response headers that are cheap to ask, set and send: every HTTP response the API answers from
its own bytes (REST's JSON, GraphQL's results) carries them."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator
from typing import Any

from django.http.response import ResponseHeaders


class _QuickItems(ItemsView[str, str]):
    """The (name, value) pairs as ResponseHeaders stores them, read in one pass of its dict."""

    _mapping: QuickHeaders

    def __len__(self) -> int:
        return len(self._mapping._store)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._mapping._store.values())


class QuickHeaders(ResponseHeaders):
    """Django's ResponseHeaders, with the same answers for less work. A cached GET sets a dozen
    headers, asks about eight it does not have, and the WSGI handler lists them all.

    - `in` and `get` are one dict lookup. Mapping's own look a header up through `__getitem__` and
      catch its KeyError: ~3,600 instructions for each absent header (Content-Length, Vary,
      X-Frame-Options, Content-Security-Policy, the three of SecurityMiddleware...).
    - `items()` reads the stored pairs. Mapping's iterates the names and looks each one up again:
      three Python calls per header.
    - A header whose name and value are ASCII text without CR or LF is stored as it is: for such
      text ResponseHeaders' checks (the name encoded to ASCII, the value to Latin-1, both searched
      for a newline) pass and store it unchanged. Anything else (bytes, numbers, other characters,
      a newline) takes its checks. Searching for the two characters is a `memchr` each; asking
      `isprintable()` instead looked every character up in Unicode's tables (the CSP header alone
      is ~240 of them).
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if (
            type(key) is str
            and type(value) is str
            and key.isascii()
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
            and "\n" not in key
            and "\r" not in key
        ):
            self._store[key.lower()] = (key, value)
        else:
            super().__setitem__(key, value)

    def items(self) -> _QuickItems:
        return _QuickItems(self)

    def __contains__(self, key: object) -> bool:
        return key.lower() in self._store  # type: ignore[attr-defined]  # a non-str key fails as before

    def get(self, key: str, default: Any = None) -> Any:
        entry = self._store.get(key.lower())
        return default if entry is None else entry[1]

    @classmethod
    def adopt(cls, headers: ResponseHeaders) -> QuickHeaders:
        """These headers, already checked and encoded by ResponseHeaders, without copying them."""
        quick = cls({})
        quick._store = headers._store
        return quick
