"""A small labelled corpus with Zipf-like authors, generated (no files needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

POSITIVE = ("love", "great", "happy", "awesome", "wonderful", "best", "enjoy", "nice")
NEGATIVE = ("hate", "awful", "sad", "terrible", "worst", "angry", "bad", "boring")
NEUTRAL = ("today", "meeting", "train", "report", "monday", "weather", "news", "update")
FILLER = ("the", "game", "movie", "city", "phone", "team", "show", "music", "coffee", "election")


def corpus(rows: int = 480, seed: int = 3) -> pd.DataFrame:
    """row_key, user_key, text, label; author k writes max(1, 40 // (k+1)) rows."""
    rng = np.random.default_rng(seed)
    counts: list[int] = []
    while sum(counts) < rows:
        counts.append(max(1, 40 // (len(counts) + 1)))
    counts[-1] -= sum(counts) - rows
    authors = np.repeat(np.arange(len(counts)), counts)[rng.permutation(rows)]
    texts, labels = [], []
    for _ in range(rows):
        label = int(rng.integers(0, 3))
        vocabulary = (NEGATIVE, NEUTRAL, POSITIVE)[label]
        words = [str(rng.choice(vocabulary)), *(str(w) for w in rng.choice(FILLER, size=4))]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return pd.DataFrame(
        {
            "row_key": [f"p{i:04d}|u{a}" for i, a in enumerate(authors)],
            "user_key": [f"u{a}" for a in authors],
            "text": texts,
            "label": labels,
        }
    ).sort_values("row_key", ignore_index=True)


def probe_texts() -> list[str]:
    return ["love the game", "awful coffee today", "monday meeting news", "best music", "worst team", "city"]
