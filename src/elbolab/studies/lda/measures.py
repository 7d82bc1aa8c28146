"""What is measured of a fitted model: the largest one-iteration drop of the ELBO, the
ELBO surgery of the document-topic posteriors, scikit-learn's bound at the same
parameters, topic coherence and held-out document completion."""

from __future__ import annotations

import numpy as np

from ...data import Corpus
from ...diagnostics import best_dirichlet_prior, dirichlet_surgery, topic_coherence
from ...models import LDA
from ..runner import cached
from .config import Config


def largest_drop(history: np.ndarray) -> float:
    """The largest decrease of any restart's ELBO over one iteration (nats; 0 if none)."""
    if history.shape[0] < 2:
        return 0.0
    return float(max(0.0, -np.diff(history, axis=0).min()))


def surgery_terms(model: LDA, samples: int, seed: int, best_prior: bool = False) -> dict:
    """:func:`dirichlet_surgery` of the best restart's training posteriors Dir(gamma_d)
    against the model's Dir(alpha) prior, or with ``best_prior`` against the Dirichlet
    closest to them (:func:`best_dirichlet_prior`, its alpha under ``"alpha"``): the
    scalar terms (nats per document)."""
    alpha = best_dirichlet_prior(model.gamma_) if best_prior else model.alpha_
    r = dirichlet_surgery(model.gamma_, alpha, samples_per_doc=samples, seed=seed)
    out = {key: value for key, value in r.items() if not isinstance(value, np.ndarray)}
    if best_prior:
        out["alpha"] = alpha.tolist()
    return out


def sklearn_elbo(model: LDA, train: Corpus) -> float | None:
    """scikit-learn's ``_approx_bound`` (nats) at the best restart's lambda and gamma, or
    None when scikit-learn is not installed.

    ``_approx_bound`` is private; it reads these fitted attributes, which are set here
    (as in tests/models/test_lda.py) instead of fitting scikit-learn's model.
    """
    try:
        from sklearn.decomposition import LatentDirichletAllocation
    except ImportError:
        return None
    from scipy import special

    lam = model.components_
    sk = LatentDirichletAllocation(
        n_components=lam.shape[0], doc_topic_prior=model.alpha_, topic_word_prior=model.eta_
    )
    sk.components_ = lam.copy()
    sk.exp_dirichlet_component_ = np.exp(special.psi(lam) - special.psi(lam.sum(1, keepdims=True)))
    sk.doc_topic_prior_, sk.topic_word_prior_ = model.alpha_, model.eta_
    sk.n_features_in_ = lam.shape[1]
    counts = train.counts.astype(np.float64)
    return float(sk._approx_bound(counts, model.gamma_, sub_sampling=False))


def coherence(components: np.ndarray, reference: Corpus, n: int) -> dict:
    """UMass and NPMI of every topic's n top words (rows of lambda) in ``reference``, by
    document co-occurrence with :func:`topic_coherence`'s default smoothing: per topic,
    their means over the topics, and the epsilons."""
    out = {"top_n": n}
    for measure in ("umass", "npmi"):
        c = topic_coherence(components, reference, measure=measure, top_n=n)
        out[measure] = c.per_topic.tolist()
        out[f"{measure}_mean"] = c.mean
        out[f"{measure}_epsilon"] = c.epsilon
    return out


def measure_fit(cfg: Config, k: int, model: LDA, inputs: dict, rundir, timings: dict) -> dict:
    """The measures of K's merged model, each cached in ``rundir``: coherence of its top
    words, scikit-learn's bound, the ELBO surgery against alpha and against the closest
    Dirichlet, and (with held-out documents) document completion."""
    train, observed, heldout = inputs["train"], inputs["observed"], inputs["heldout"]
    out = {
        "coherence": coherence(model.components_, train, cfg.top_words),
        "sklearn_elbo_best": cached(
            rundir, f"sklearn_elbo_K{k}", lambda: sklearn_elbo(model, train), timings
        ),
        "surgery": cached(
            rundir,
            f"surgery_K{k}",
            lambda: surgery_terms(model, cfg.surgery_samples, cfg.seed),
            timings,
        ),
        "surgery_best_prior": cached(
            rundir,
            f"surgery_best_prior_K{k}",
            lambda: surgery_terms(model, cfg.surgery_samples, cfg.seed, True),
            timings,
        ),
    }
    if observed is not None:
        out["completion"] = cached(
            rundir, f"completion_K{k}", lambda: model.completion_perplexity(observed, heldout)
        )
    return out
