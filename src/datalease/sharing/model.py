"""Metering as plain data: what one protocol request or download served, and monthly sums."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    partner: str
    agreement_id: str
    table: str | None
    action: str  # list | metadata | version | query | changes | file
    files: int = 0
    rows: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class UsageTotal:
    month: str
    partner: str
    agreement_id: str
    queries: int  # table queries and change-feed queries
    requests: int  # every protocol request, file downloads excluded
    files: int  # files listed in query/changes answers
    rows: int  # rows in the files listed
    bytes: int  # bytes of file content sent
