"""The study's inputs: the corpus (a file or AP), the saved model a fit may start from,
checked against it, and the training, test and completion splits."""

from __future__ import annotations

import os

from ...data import Corpus
from ...data.formats import _uci_vocab_path
from ...errors import ConfigError, DataError
from ...models import LDA
from ...models.lda import pad_vocabulary
from ..lda_runs import load_corpus, split_corpus
from .config import Config


def prepare(cfg: Config, data_root=None) -> dict:
    """Load (and check) the corpus and make the splits; nothing is written."""
    corpus, source = load_corpus(data_root, cfg.corpus, cfg.vocab, cfg.n_docs)
    corpus, init = _with_init(cfg, corpus)
    if cfg.test_fraction > 0:
        split = split_corpus(corpus, cfg.test_fraction, cfg.observed_fraction, cfg.seed)
        train, observed, heldout = split["train"], split["observed"], split["heldout"]
    else:
        train, observed, heldout = corpus, None, None
    return {
        "source": source,
        "corpus": corpus,
        "train": train,
        "observed": observed,
        "heldout": heldout,
        "init": init,
    }


def corpus_has_vocab(corpus: str | os.PathLike, vocab: str | os.PathLike | None) -> bool:
    """Whether :func:`read_corpus` knows the words of ``corpus``: given ``vocab``, or a
    UCI file (which always comes with its vocabulary); an lda-c file without a
    vocabulary gets the made-up words w0, w1, ..."""
    return bool(vocab) or _uci_vocab_path(corpus) is not None


def has_vocab(cfg: Config) -> bool:
    """Whether the corpus's words are known: AP, or see :func:`corpus_has_vocab`."""
    return not cfg.corpus or corpus_has_vocab(cfg.corpus, cfg.vocab)


def _with_init(cfg: Config, corpus: Corpus) -> tuple[Corpus, LDA | None]:
    """The model of ``cfg.init`` (None without one) checked against the corpus: its K
    against ``topics``, its vocabulary against the corpus's (same words in the same
    order) when both have one, else the widths. A corpus without a vocabulary file is
    widened to the model's words (:func:`pad_vocabulary`)."""
    if not cfg.init:
        return corpus, None
    model = LDA.load(cfg.init)
    k, n_words = model.components_.shape
    if tuple(cfg.topics) != (k,):
        raise ConfigError(
            f"init {cfg.init} has K = {k} topics but topics is {list(cfg.topics)}; "
            f"set topics to {k}"
        )
    if not has_vocab(cfg):
        counts = pad_vocabulary(corpus.counts, n_words)
        return Corpus(counts, [f"w{i}" for i in range(n_words)], corpus.doc_ids), model
    if model.vocab_ is None:
        if corpus.n_words != n_words:
            raise DataError(
                f"the corpus has {corpus.n_words} words but init {cfg.init} has {n_words}"
            )
    elif corpus.vocab != model.vocab_:
        i = next(
            (i for i, (a, b) in enumerate(zip(corpus.vocab, model.vocab_, strict=False)) if a != b),
            min(corpus.n_words, n_words),
        )
        raise DataError(
            f"the corpus's vocabulary ({corpus.n_words} words) is not the one init "
            f"{cfg.init} was fitted with ({n_words} words); they first differ at word "
            f"{i}: {corpus.vocab[i] if i < corpus.n_words else None!r} in the corpus, "
            f"{model.vocab_[i] if i < n_words else None!r} in the model"
        )
    return corpus, model
