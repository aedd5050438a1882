"""What a sharing server computes from the store and keeps while the catalogue is unchanged: the
partners' share listings and the shares' tables.

The catalogue's version (store.releases.catalogue_version: the latest release, the latest agreement
status change, the number of agreements) is read with each request's token; a new release or
revocation is a new version, so it is visible at once. Only one version is held: values computed for
another are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

Version = tuple[object, ...]
_T = TypeVar("_T")


class CatalogueCache:
    def __init__(self) -> None:
        self._held: tuple[Version, dict[str, object]] = ((), {})
        self._lock = threading.Lock()

    def get(self, name: str, compute: Callable[[], _T], version: Version) -> _T:
        """`compute()` (read after `version` was), or what it gave before at the same version."""
        with self._lock:
            key, values = self._held
            if key != version:
                values = {}
                self._held = (version, values)
            if name in values:
                return values[name]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            if self._held[0] == version:
                self._held[1][name] = value
        return value

    def peek(self, name: str, version: Version) -> object | None:
        """What `get` would return without computing (no I/O), or None."""
        with self._lock:
            key, values = self._held
            return values.get(name) if key == version else None
