"""Topic coherence on AP: elbolab's ``topic_coherence`` against gensim's CoherenceModel.

Usage::

    python benchmarks/coherence_gensim.py [--data ROOT] [--topics 10] [--top-n 10]
                                          [--iters 20] [--repeats 5]

The topics are those of a short LDA fit on the whole AP corpus (``--iters`` CAVI
iterations from seed 0), their ``--top-n`` most probable words scored against the same
corpus by both tools, co-occurrence by document:

* UMass: gensim's ``u_mass`` on the bag-of-words corpus against elbolab with
  ``epsilon=1e-12`` (gensim's smoothing; elbolab's default is Mimno et al.'s +1
  co-document, also printed);
* NPMI: gensim's ``c_npmi`` on the token texts with ``window_size`` = the longest
  document's length (every document one window) against elbolab's default.

Printed: per-topic values of both tools, the largest difference, and the median wall
time of ``--repeats`` calls of each (gensim's accumulation over the corpus included,
elbolab's binarization included; building gensim's inputs from the corpus is not timed)
with the speed ratio. Timings on a shared machine are noisy; the load average is printed.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import time

import numpy as np

from elbolab.data import Corpus, load_ap
from elbolab.diagnostics import topic_coherence
from elbolab.models import LDA


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data root holding ap/ (default: $ELBOLAB_DATA)")
    parser.add_argument("--topics", type=int, default=10, help="number of topics K")
    parser.add_argument("--top-n", type=int, default=10, help="top words per topic")
    parser.add_argument("--iters", type=int, default=20, help="CAVI iterations of the fit")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per tool")
    return parser.parse_args(argv)


def gensim_inputs(corpus: Corpus):
    """The corpus as gensim reads it: a Dictionary keeping elbolab's word ids, the
    bag-of-words documents and the token texts (word order is irrelevant here)."""
    from gensim.corpora import Dictionary

    counts = corpus.counts
    bow = [
        list(zip(counts.indices[a:b].tolist(), counts.data[a:b].tolist(), strict=True))
        for a, b in itertools.pairwise(counts.indptr)
    ]
    dictionary = Dictionary.from_corpus(bow, id2word=dict(enumerate(corpus.vocab)))
    texts = [[corpus.vocab[w] for w, c in doc for _ in range(c)] for doc in bow]
    return dictionary, bow, texts


def gensim_scores(topics, dictionary, bow, texts, coherence: str, window: int) -> np.ndarray:
    from gensim.models import CoherenceModel

    if coherence == "u_mass":
        model = CoherenceModel(
            topics=topics, corpus=bow, dictionary=dictionary, coherence="u_mass", processes=1
        )
    else:
        model = CoherenceModel(
            topics=topics,
            texts=texts,
            dictionary=dictionary,
            coherence="c_npmi",
            window_size=window,
            processes=1,
        )
    return np.array(model.get_coherence_per_topic())


def median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.getLogger("gensim").setLevel(logging.WARNING)
    corpus = load_ap(args.data)
    model = LDA(n_topics=args.topics, max_iter=args.iters, seed=0).fit(corpus)
    ids = np.argsort(-model.components_, axis=1, kind="stable")[:, : args.top_n]
    words = [[corpus.vocab[w] for w in row] for row in ids]
    dictionary, bow, texts = gensim_inputs(corpus)
    window = int(corpus.doc_lengths.max())
    print(
        f"AP: {corpus.n_docs} documents, {corpus.n_words} words, {corpus.n_tokens:,} tokens; "
        f"K = {args.topics} topics after {args.iters} CAVI iterations, top {args.top_n} words; "
        f"c_npmi window = {window} tokens (the longest document); load average "
        f"{os.getloadavg()[0]:.2f}; {args.repeats} timed calls each, medians"
    )
    for measure, name, eps in (("umass", "u_mass", 1e-12), ("npmi", "c_npmi", None)):
        t_ours, ours = median_time(
            lambda m=measure, e=eps: topic_coherence(ids, corpus, measure=m, epsilon=e),
            args.repeats,
        )
        t_gensim, theirs = median_time(
            lambda n=name: gensim_scores(words, dictionary, bow, texts, n, window), args.repeats
        )
        print(f"\n{measure} (elbolab epsilon = {ours.epsilon:g}) against gensim {name}:")
        print(f"{'topic':>5} {'elbolab':>12} {'gensim':>12}  top words")
        for k in range(len(ids)):
            print(f"{k:>5} {ours.per_topic[k]:>12.6f} {theirs[k]:>12.6f}  {' '.join(words[k][:6])}")
        print(
            f"mean {ours.mean:.6f} vs {theirs.mean():.6f}; largest difference "
            f"{np.abs(ours.per_topic - theirs).max():.2e}"
        )
        print(
            f"time: elbolab {1e3 * t_ours:.1f} ms, gensim {1e3 * t_gensim:.1f} ms "
            f"(elbolab {t_gensim / t_ours:.0f}x faster)"
        )
    mimno = topic_coherence(ids, corpus, measure="umass")
    print(
        f"\nUMass with Mimno et al.'s +1 co-document (elbolab's default, epsilon = 1/N): "
        f"mean {mimno.mean:.6f}; per topic " + " ".join(f"{v:.3f}" for v in mimno.per_topic)
    )


if __name__ == "__main__":
    main()
