"""Encoded `/query` answers kept for reuse: a partner's client asks the same snapshot again and again
(each Spark task, each poll), and signing and encoding a hundred file URLs is most of the work.

An answer is reused only for the same token, the same catalogue version (a new release, a revocation
or an agreement's status change is a new version: never a stale file list), the same table and the
same request, and only while its URLs keep most of their lifetime: after `reuse_s` it is signed
anew, so a reused answer's URLs still live at least `lifetime - reuse_s` seconds, and its
`expirationTimestamp` says exactly when they end. Bounded by bytes, least recently used out first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

MAX_BYTES: Final = 64 * 2**20
MAX_REUSE_S: Final = 60
Key = tuple[object, ...]


@dataclass(frozen=True)
class Answer:
    body: bytes
    version: int
    files: int
    rows: int
    expires: int  # the URLs' expiry, epoch seconds


class AnswerCache:
    def __init__(self, lifetime_s: int, *, max_bytes: int = MAX_BYTES) -> None:
        self.lifetime_s = lifetime_s
        # A twentieth of the URLs' lifetime, at most a minute: a short-lived URL is never reused.
        self.reuse_s = min(MAX_REUSE_S, lifetime_s // 20)
        self.max_bytes = max_bytes
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Key, now: float) -> Answer | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                return None
            if found.expires - now < self.lifetime_s - self.reuse_s:
                self._drop(key)
                return None
            self._answers.move_to_end(key)
            return found

    def put(self, key: Key, answer: Answer) -> None:
        if self.reuse_s <= 0 or len(answer.body) > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._answers:
                self._drop(key)
            self._answers[key] = answer
            self._bytes += len(answer.body)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._answers)))

    def _drop(self, key: Key) -> None:
        self._bytes -= len(self._answers.pop(key).body)
