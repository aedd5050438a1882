"""Training rows: an identity per row, the author's key, the text and the sentiment label.

Labels are TweetEval's: 0 negative, 1 neutral, 2 positive. A `label` column is used as it is (the tests
and the benchmark carry TweetEval's labels); otherwise they come from the table's `sentiment` column —
the VADER compound score the platform computed — with VADER's usual thresholds: ≥ 0.05 positive,
≤ -0.05 negative, neutral between.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partnerkit.errors import PartnerError
from partnerkit.sync import row_keys

CLASSES = (0, 1, 2)
AUTHOR = "user_key"
TEXT = "text"
VADER_POSITIVE = 0.05
VADER_NEGATIVE = -0.05


def vader_labels(compound: pd.Series) -> np.ndarray:
    values = compound.astype(float).to_numpy()
    return np.where(values >= VADER_POSITIVE, 2, np.where(values <= VADER_NEGATIVE, 0, 1)).astype(np.int64)


def training_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`row_key`, `user_key`, `text`, `label`, sorted by `row_key` (the order never depends on how
    the table was read). Rows without text are left out."""
    for column in (AUTHOR, TEXT):
        if column not in frame.columns:
            raise PartnerError(f"the table has no `{column}` column: {list(frame.columns)}")
    if "label" in frame.columns:
        labels = frame["label"].astype("int64").to_numpy()
    elif "sentiment" in frame.columns:
        labels = vader_labels(frame["sentiment"].fillna(0.0))
    else:
        raise PartnerError("the table has neither a `label` nor a `sentiment` column to learn from")
    rows = pd.DataFrame(
        {
            "row_key": row_keys(frame, keys).astype(str).to_numpy() if len(frame) else [],
            "user_key": frame[AUTHOR].astype(str).to_numpy(),
            "text": frame[TEXT].to_numpy(),
            "label": labels,
        }
    )
    rows = rows[rows["text"].notna()].copy()
    rows["text"] = rows["text"].astype(str)
    bad = ~rows["label"].isin(CLASSES)
    if bad.any():
        raise PartnerError(f"labels must be 0, 1 or 2; found {sorted(set(rows.loc[bad, 'label']))[:5]}")
    return rows.sort_values("row_key", kind="stable").reset_index(drop=True)
