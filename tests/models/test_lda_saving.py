"""LDA.save / LDA.load: the round trip, bad files, and mapping corpora onto a model's words."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from elbolab.data import Corpus, lda_corpus
from elbolab.errors import ConfigError, DataError
from elbolab.models import LDA
from elbolab.models.lda import map_vocabulary, pad_vocabulary


@pytest.fixture(scope="module")
def fitted():
    corpus, _, _ = lda_corpus(n_docs=40, n_words=25, n_topics=3, doc_length=20, seed=3)
    model = LDA(n_topics=3, alpha=0.2, max_iter=6, n_restarts=2, seed=5, e_step_tol=1e-4)
    return model.fit(corpus), corpus


@pytest.fixture
def saved(fitted, tmp_path):
    model, corpus = fitted
    return model.save(tmp_path / "m.npz", vocab=corpus.vocab)


def rewrite(path, change):
    """Rewrite the archive at ``path`` after ``change(entries)`` edits its entries."""
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    change(entries)
    np.savez(path, **entries)


def test_round_trip_keeps_everything_transform_needs(fitted, saved):
    model, corpus = fitted
    loaded = LDA.load(saved)
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded.history_, model.history_)
    assert (loaded.alpha_, loaded.eta_, loaded.n_iter_, loaded.elbo_) == (
        model.alpha_,
        model.eta_,
        model.n_iter_,
        model.elbo_,
    )
    assert (loaded.alpha, loaded.seed, loaded.e_step_tol) == (0.2, 5, 1e-4)
    assert loaded.vocab_ == corpus.vocab and all(type(w) is str for w in loaded.vocab_)
    new, _, _ = lda_corpus(n_docs=15, n_words=25, n_topics=3, doc_length=30, seed=9)
    # Bit for bit, not approximately: the same topics and settings give the same E-step.
    np.testing.assert_array_equal(loaded.transform(new), model.transform(new))
    assert loaded.score(new) == model.score(new)


def test_without_vocab_and_unfitted(fitted, tmp_path):
    model, _ = fitted
    assert LDA.load(model.save(tmp_path / "sub" / "m.npz")).vocab_ is None
    with pytest.raises(ConfigError, match="not fitted"):
        LDA(3).save(tmp_path / "x.npz")
    with pytest.raises(ConfigError, match="vocab has 2 words"):
        model.save(tmp_path / "x.npz", vocab=["a", "b"])
    assert not (tmp_path / "x.npz").exists()


def test_same_model_same_bytes(fitted, saved, tmp_path):
    # No timestamps inside: a resumed run rewrites an identical file.
    model, corpus = fitted
    again = model.save(tmp_path / "again.npz", vocab=corpus.vocab)
    assert again.read_bytes() == saved.read_bytes()
    # A loaded model saved again (its vocabulary kept by default) is the same file.
    resaved = LDA.load(saved).save(tmp_path / "resaved.npz")
    assert resaved.read_bytes() == saved.read_bytes()
    with np.load(saved, allow_pickle=False) as npz:
        settings = json.loads(str(npz["settings"]))
    assert settings["format"] == "elbolab-lda" and settings["version"] == 1


def test_other_version_is_refused(saved):
    def bump(entries):
        settings = json.loads(str(entries["settings"]))
        settings["version"] = 2
        entries["settings"] = np.array(json.dumps(settings))

    rewrite(saved, bump)
    with pytest.raises(DataError, match="version 2") as err:
        LDA.load(saved)
    assert str(saved) in str(err.value)


@pytest.mark.parametrize("key", ["components", "history"])
def test_missing_array_is_refused(saved, key):
    rewrite(saved, lambda entries: entries.pop(key))
    with pytest.raises(DataError, match=f"lacks {key}") as err:
        LDA.load(saved)
    assert str(saved) in str(err.value)


def test_missing_setting_is_refused(saved):
    def drop(entries):
        settings = json.loads(str(entries["settings"]))
        del settings["params"]["e_step_tol"]
        del settings["eta_"]
        entries["settings"] = np.array(json.dumps(settings))

    rewrite(saved, drop)
    with pytest.raises(DataError, match=r"lacks eta_, params\.e_step_tol"):
        LDA.load(saved)


def test_bad_contents_are_refused(saved):
    rewrite(saved, lambda entries: entries.update(components=-entries["components"]))
    with pytest.raises(DataError, match="positive"):
        LDA.load(saved)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("hello\n"), "not an elbolab LDA model"),
        (lambda p: np.save(p, np.zeros(3)), "single .npy array"),
        (lambda p: np.savez(p, x=np.zeros(3)), "no 'settings' entry"),
    ],
    ids=["text", "npy", "other-npz"],
)
def test_not_a_model_file(tmp_path, write, message):
    path = tmp_path / "m.npz"
    write(path)
    if not path.exists():  # np.save / np.savez add their suffix
        path = next(tmp_path.iterdir())
    with pytest.raises(DataError, match=message) as err:
        LDA.load(path)
    assert str(path) in str(err.value)
    with pytest.raises(DataError, match="not found"):
        LDA.load(tmp_path / "missing.npz")


def test_map_vocabulary_moves_counts_by_word():
    counts = sp.csr_matrix(np.array([[1, 2, 3], [0, 4, 5]]))
    mapped, dropped, unknown = map_vocabulary(counts, ["b", "zz", "a"], ["a", "b", "c"])
    np.testing.assert_array_equal(mapped.toarray(), [[3, 1, 0], [5, 0, 0]])
    assert (dropped, unknown) == (6, 1)


def test_pad_vocabulary_keeps_ids():
    counts = sp.csr_matrix(np.array([[1, 0], [0, 2]]))
    np.testing.assert_array_equal(pad_vocabulary(counts, 4).toarray(), [[1, 0, 0, 0], [0, 2, 0, 0]])
    with pytest.raises(DataError, match="word ids up to 1"):
        pad_vocabulary(counts, 1)


def test_counts_for_maps_a_new_corpus_onto_the_models_words(fitted, saved):
    _, corpus = fitted
    loaded = LDA.load(saved)  # knows its words
    # The new corpus lists the words in reverse and adds one the model never saw.
    part = corpus.subset(np.arange(4))
    extra = np.array([[2], [0], [1], [0]])
    new = Corpus.from_dense(
        np.hstack([part.to_dense()[:, ::-1], extra]), vocab=[*corpus.vocab[::-1], "unseen"]
    )
    counts, dropped, unknown = loaded.counts_for(new)
    np.testing.assert_array_equal(counts.toarray(), part.to_dense())
    assert (dropped, unknown) == (3, 1)
    strangers = Corpus.from_dense(np.ones((2, 2), int), vocab=["x", "y"])
    with pytest.raises(DataError, match="none of the corpus's 2 words"):
        loaded.counts_for(strangers)


def test_counts_for_without_words_keeps_ids_and_checks_widths(fitted):
    model, corpus = fitted  # fitted here, so it knows no words
    narrow = Corpus.from_dense(np.array([[1, 0, 2]]))
    counts, dropped, unknown = model.counts_for(narrow, by_word=False)
    assert counts.shape == (1, corpus.n_words) and (dropped, unknown) == (0, 0)
    np.testing.assert_array_equal(counts.toarray()[0, :4], [1, 0, 2, 0])
    with pytest.raises(DataError, match="has 3 words but the model has 25 and no vocabulary"):
        model.counts_for(narrow)
    wide = Corpus.from_dense(np.ones((1, corpus.n_words + 1), int))
    with pytest.raises(DataError, match=f"word ids up to {corpus.n_words}"):
        model.counts_for(wide, by_word=False)
