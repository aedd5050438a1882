"""Revoked data is never served again: walk every answer and every file a partner can reach and look
for the opted-out user's text."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from sharing_world import HTTP_TIMEOUT, PARTNER_OF, SCHEMA, TABLES, Served, file_urls, get, json_lines, post


def strings_in(table: pa.Table) -> set[str]:
    found: set[str] = set()
    for column in table.columns:
        if (
            pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)
            or pa.types.is_string_view(column.type)
        ):
            found.update(v for v in column.to_pylist() if v is not None)
    return found


def json_strings(value: Any) -> set[str]:
    """Every string in a JSON value, looking inside strings that are JSON themselves (file stats)."""
    if isinstance(value, dict):
        return set().union(*(json_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(json_strings(v) for v in value)) if value else set()
    if isinstance(value, str):
        if value.startswith("{"):
            try:
                return {value} | json_strings(json.loads(value))
            except ValueError:
                return {value}
        return {value}
    return set()


def test_the_opted_out_users_text_appears_in_no_answer_and_no_file(served: Served) -> None:
    world = served.world
    texts = world.victim_texts
    assert texts
    answers: list[str] = []
    urls: list[str] = []
    for agreement in TABLES:
        profile = served.profile(PARTNER_OF[agreement])
        answers.append(get(profile, f"/shares/{agreement}/card").text)
        for name in world.shared[agreement]:
            base = f"/shares/{agreement}/schemas/{SCHEMA}/tables/{name}"
            for fmt in ("parquet", "delta"):
                headers = {"delta-sharing-capabilities": f"responseformat={fmt}"}
                answers.append(get(profile, base + "/metadata", headers=headers).text)
                latest = int(get(profile, base + "/version").headers["Delta-Table-Version"])
                bodies: list[dict[str, Any]] = [{}, *({"version": v} for v in range(latest + 1))]
                for body in bodies:  # every version: refused ones answer 400 without files
                    response = post(profile, base + "/query", body, headers=headers)
                    answers.append(response.text)
                    if response.status_code == 200:
                        urls.extend(file_urls(json_lines(response)))
                    else:
                        assert response.status_code == 400, response.text
                for start in range(0, latest + 1):
                    response = get(
                        profile, base + "/changes", params={"startingVersion": start}, headers=headers
                    )
                    answers.append(response.text)
                    urls.extend(file_urls(json_lines(response)))
    answered: set[str] = set()
    for answer in answers:
        for line in answer.splitlines():
            answered |= json_strings(json.loads(line)) if line.startswith("{") else {line}
    assert not answered & texts
    served_strings: set[str] = set()
    victim_keys = set(world.victim_keys.values())
    deletes_of_victim = 0
    for url in sorted(set(urls)):
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, (url, response.text)
        table = pq.read_table(io.BytesIO(response.content))
        served_strings |= strings_in(table)
        for row in table.to_pylist():
            change = row.get("_change_type")
            if change in ("delete", "update_preimage"):
                carried = {k: v for k, v in row.items() if not k.endswith("_key") and k != "_change_type"}
                assert all(v is None for v in carried.values()), row
            if row.get("user_key") in victim_keys:
                # the victim's keys travel only inside the instruction to delete their rows
                assert change == "delete", row
                deletes_of_victim += 1
    assert deletes_of_victim > 0
    assert not served_strings & texts
