"""A batch's records are validated as TypedDicts (`DecideRecord`, ~2× cheaper to build than models)
while the API documents and refuses with the `DecideIn` model: the two must accept exactly the same
records, to the same requests — for any record, valid or not (Hypothesis)."""

from __future__ import annotations

import json
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from datalease.api.platform_decide import BATCH_RECORDS, BatchIn, DecideRecord, _requests
from datalease.services.platform_decide import DecideRequest
from depth import examples

INSTANTS = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from(
        [
            "2026-05-01T09:30:00Z",
            "2026-05-01T09:30:00+02:00",
            "2026-05-01T09:30:00",  # no offset: refused
            "2026-05-01",
            "yesterday",
            "0001-01-01T00:00:00Z",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
)
TEXT = st.text(max_size=110)
RECORDS = st.fixed_dictionaries(
    {
        "user_id": st.one_of(st.integers(-2, 2**64), st.booleans(), TEXT, st.floats(allow_nan=False)),
        "category": st.one_of(TEXT, st.integers()),
        "purposes": st.one_of(st.lists(TEXT, max_size=22), TEXT),
    },
    optional={
        "partner": st.one_of(st.none(), TEXT),
        "at": INSTANTS,
        "post_id": st.one_of(st.none(), st.integers(-1, 2**64), st.booleans(), st.just("7")),
        "colour": st.integers(),  # not a field: refused
    },
)


def _parsed(body: bytes) -> list[DecideRequest] | None:
    """The requests each shape yields, or None when it refuses the body."""
    try:
        typed = _requests(BATCH_RECORDS.validate_json(body)["records"], True)
    except ValidationError:
        typed = None
    try:
        model = BatchIn.model_validate_json(body)
        as_model = _requests([cast(DecideRecord, r.model_dump()) for r in model.records], True)
    except ValidationError:
        as_model = None
    assert typed == as_model, body
    return typed


@settings(max_examples=examples(300, 3000), deadline=None)
@given(st.lists(RECORDS, min_size=0, max_size=4))
def test_the_typed_records_accept_what_the_model_accepts(records: list[dict[str, Any]]) -> None:
    _parsed(json.dumps({"records": records}).encode())


def test_a_valid_record_is_read_field_by_field() -> None:
    record = {
        "user_id": 7,
        "category": "posts",
        "purposes": ["train_ai_system.generative"],
        "partner": "lumen-labs",
        "at": "2026-05-01T09:30:00Z",
        "post_id": 3,
    }
    (asked,) = _parsed(json.dumps({"records": [record]}).encode()) or []
    assert asked.user_id == 7 and asked.purposes == ("train_ai_system.generative",) and asked.post_id == 3
    assert asked.at is not None and asked.at.isoformat() == "2026-05-01T09:30:00+00:00"
