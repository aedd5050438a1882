"""SISA and the exact mode in memory: forgetting equals training from scratch on what remains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rows import corpus, probe_texts

from partnerkit.exact import ExactConfig, ExactModel, Statistics
from partnerkit.features import ProjectionEmbedder, hashed
from partnerkit.sisa import SisaConfig, assign, forget_sisa, manifest_entries, place, restore, train_sisa

CONFIG = SisaConfig(shards=4, slices=3, seed=5, epochs=3, n_features=2**16)


def _coefficients(model_bytes: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    model = restore(model_bytes)
    return None if model is None else (model.coef_, model.intercept_)


def _same_model(left: dict[int, list[bytes]], right: dict[int, list[bytes]]) -> None:
    assert left.keys() == right.keys()
    for shard in left:
        for a, b in zip(left[shard], right[shard], strict=True):
            ca, cb = _coefficients(a), _coefficients(b)
            assert (ca is None) == (cb is None), shard
            if ca is not None and cb is not None:
                assert np.array_equal(ca[0], cb[0]) and np.array_equal(ca[1], cb[1]), f"shard {shard}"


def test_a_users_rows_live_in_one_shard_and_one_slice() -> None:
    rows = assign(corpus(), 4, 3, seed=5)
    placements = rows.groupby("user_key")[["shard", "slice"]].nunique()
    assert (placements == 1).all().all()
    assert rows["shard"].nunique() == 4 and rows["slice"].nunique() == 3
    user = rows["user_key"].iloc[0]
    assert place(user, 4, 3, 5) == tuple(rows.loc[rows["user_key"] == user, ["shard", "slice"]].iloc[0])


def test_features_are_stateless() -> None:
    texts = probe_texts()
    alone = hashed([texts[0]])
    together = hashed(texts)
    assert (alone != together[0]).nnz == 0  # a row's features do not depend on the other rows


@pytest.mark.parametrize("victims", [1, 3])
def test_sisa_forget_equals_training_from_scratch(victims: int) -> None:
    rows = corpus()
    model = train_sisa(rows, CONFIG)
    # the most prolific authors first: they span the most rows
    gone_users = list(rows["user_key"].value_counts().index[:victims])
    gone = rows[rows["user_key"].isin(gone_users)]
    remaining = rows[~rows["user_key"].isin(gone_users)].reset_index(drop=True)
    after, report = forget_sisa(model, remaining, gone, model.checkpoint_hashes())
    scratch = train_sisa(remaining, CONFIG)
    _same_model(after.checkpoints, scratch.checkpoints)
    assert after.checkpoints == scratch.checkpoints  # the pickled checkpoints are byte-identical too
    assert np.array_equal(after.predict_proba(probe_texts()), scratch.predict_proba(probe_texts()))
    expected = {}
    for user in gone_users:
        shard, slice_ = place(user, CONFIG.shards, CONFIG.slices, CONFIG.seed)
        expected[shard] = min(expected.get(shard, CONFIG.slices), slice_)
    assert {(r.shard, r.from_slice) for r in report} == set(expected.items())
    assert all(r.reason == "forgotten rows" and not r.corrupt_checkpoint for r in report)
    for shard in set(range(CONFIG.shards)) - set(expected):
        assert after.checkpoints[shard] is model.checkpoints[shard]  # untouched shards are not retrained
    for shard, start in expected.items():
        assert after.checkpoints[shard][:start] == model.checkpoints[shard][:start]


def test_a_corrupt_checkpoint_is_detected_and_the_shard_retrained_whole() -> None:
    rows = corpus()
    model = train_sisa(rows, CONFIG)
    hashes = model.checkpoint_hashes()
    assigned = assign(rows, CONFIG.shards, CONFIG.slices, CONFIG.seed)
    user = str(assigned.loc[assigned["slice"] == CONFIG.slices - 1, "user_key"].iloc[0])
    shard, slice_ = place(user, CONFIG.shards, CONFIG.slices, CONFIG.seed)
    other = (shard + 1) % CONFIG.shards
    model.checkpoints[shard][slice_ - 1] = b"garbage"  # the checkpoint forget would start from
    model.checkpoints[other][-1] = model.checkpoints[other][-1][:-3] + b"xyz"  # an unaffected shard's model
    gone = rows[rows["user_key"] == user]
    remaining = rows[rows["user_key"] != user].reset_index(drop=True)
    after, report = forget_sisa(model, remaining, gone, hashes)
    by_shard = {r.shard: r for r in report}
    assert by_shard[shard].from_slice == 0 and by_shard[shard].corrupt_checkpoint
    assert by_shard[other].from_slice == 0 and by_shard[other].reason == "corrupt checkpoint"
    assert after.checkpoints == train_sisa(remaining, CONFIG).checkpoints


def test_the_manifest_lists_keys_and_hashes_per_shard_and_slice() -> None:
    rows = corpus()
    assigned = assign(rows, 4, 3, seed=5)
    entries = manifest_entries(assigned, 4, 3)
    listed = [k for e in entries for s in e["slices"] for k in s["row_keys"]]
    assert sorted(listed) == sorted(rows["row_key"])
    for entry in entries:
        for part in entry["slices"]:
            assert len(part["sha256"]) == 64 and part["rows"] == len(part["row_keys"])
    changed = rows.copy()
    changed.loc[0, "text"] = "something else"
    again = manifest_entries(assign(changed, 4, 3, seed=5), 4, 3)
    assert again != entries  # a changed row changes its slice's hash


@pytest.mark.parametrize("head", ["lda", "ridge"])
def test_exact_forget_is_bit_identical_to_training_from_scratch(head: str) -> None:
    rows = corpus()
    embedder = ProjectionEmbedder(dim=64, seed=1)
    vectors = embedder.embed(list(rows["text"]))
    labels = rows["label"].to_numpy()
    config = ExactConfig(head=head)
    model = ExactModel.train(vectors, labels, config)
    forgotten = np.zeros(len(rows), dtype=bool)
    for user in rows["user_key"].value_counts().index[:3]:  # one after the other
        gone = (rows["user_key"] == user).to_numpy()
        forgotten |= gone
        after = model.forget(vectors[gone], labels[gone])
        scratch = ExactModel.train(vectors[~forgotten], labels[~forgotten], config)
        assert np.array_equal(after.stats.gram, scratch.stats.gram)
        assert np.array_equal(after.stats.sums, scratch.stats.sums)
        assert np.array_equal(after.stats.counts, scratch.stats.counts)
        assert np.array_equal(after.weights, scratch.weights)
        probe = embedder.embed(probe_texts())
        assert np.array_equal(after.predict(probe), scratch.predict(probe))
        model = after
    accuracy = float(np.mean(model.predict(vectors) == labels))
    assert accuracy > 0.45, accuracy  # the head learns something (chance: 1/3)


def test_statistics_are_integers_and_order_free() -> None:
    rows = corpus(120)
    vectors = ProjectionEmbedder(dim=32, seed=2).embed(list(rows["text"]))
    labels = rows["label"].to_numpy()
    forward = Statistics.of(vectors, labels)
    order = np.random.default_rng(0).permutation(len(rows))
    backward = Statistics.of(vectors[order], labels[order])
    assert np.array_equal(forward.gram, backward.gram)
    assert np.array_equal(forward.gram, np.rint(forward.gram))


def test_nothing_global_is_fitted_in_partnerkit() -> None:
    """SISA must not fit anything on all the data: no vocabulary, IDF, class weights or searches."""
    from pathlib import Path

    import partnerkit

    source = "\n".join(p.read_text() for p in Path(partnerkit.__file__).parent.glob("*.py"))
    for forbidden in (
        "TfidfVectorizer",
        "CountVectorizer",
        "TfidfTransformer",
        "class_weight",
        "GridSearch",
        "fit_transform",
    ):
        assert forbidden not in source, forbidden
    assert pd.__name__  # pandas is what the kit hands around
