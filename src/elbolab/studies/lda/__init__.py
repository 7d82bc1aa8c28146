"""Study ``lda``: CAVI restarts on a corpus (AP by default) for a few topic counts.

For each K it fits ``restarts`` random initializations (batched) on the training
documents and reports

- the ELBO (nats, every normalizer) after each iteration, for every restart,
- the spread of the optima the restarts end in,
- the top words of every topic of the best restart, with their coherence in the
  training documents (UMass of Mimno et al. 2011 and NPMI, :func:`topic_coherence`),
- held-out document-completion perplexity: theta is inferred from half of each test
  document's tokens and the other half is scored under the posterior-mean topics
  (a predictive score, not the bound),
- the ELBO surgery of the best restart's document-topic posteriors q(theta_d) =
  Dir(gamma_d) against the Dir(alpha) prior (Hoffman & Johnson 2016): their average KL
  split into the document-index mutual information (<= log D) and the marginal KL of
  the aggregate posterior (1/D) sum_d q(theta_d), in nats per training document; it
  answers the question Hoffman & Johnson raise, whether a classical model's aggregate
  posterior matches its prior better than a VAE's,
- the same best restart's bound computed by scikit-learn's LDA code (when installed):
  the check that the ELBO reported here is the quantity scikit-learn reports.

``elbolab lda fit`` is this study with one K and no held-out split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import checks
from ...data import Corpus
from ...data.formats import _uci_vocab_path
from ...diagnostics import best_dirichlet_prior, dirichlet_surgery, topic_coherence
from ...errors import ConfigError, DataError
from ...models import LDA
from ...models.lda import pad_vocabulary
from ..lda_runs import (
    CaviSettings,
    load_corpus,
    restart_histories,
    restart_units,
    split_corpus,
    top_words,
)

NAME = "lda"
DESCRIPTION = (
    "LDA by batch CAVI: ELBO curves and optima across restarts, top words, held-out perplexity"
)


@dataclass(frozen=True)
class Config:
    """Settings of the ``lda`` study.

    topics : topic counts K to fit.
    restarts : random initializations per K, each an independent unit of work.
    max_iter, tol : CAVI stopping rule (relative ELBO gain per iteration).
    alpha, eta : symmetric Dirichlet priors; None means 1/K.
    test_fraction : documents held out for document completion (0 = none).
    observed_fraction : share of each held-out document's tokens used to infer theta.
    n_docs : use only the first n_docs documents (None = all).
    corpus, vocab : an lda-c corpus and its vocabulary; empty = the AP corpus.
    top_words : words listed per topic.
    surgery_samples : draws of theta per training document for the ELBO surgery; its
        cost grows as D^2 * surgery_samples * K (D training documents): ~1.5 s per K on
        AP's 2,021 at 10 draws.
    init : a saved LDA model (``.npz``, :meth:`LDA.save`) whose topics lambda every fit
        starts from instead of random ones; empty = random. topics must then be its one
        K, the corpus must have its vocabulary (same words, same order; checked when both
        have one, else the widths must agree; an lda-c corpus without a vocabulary file
        takes word ids as the model's), and restarts must be 1: the start is then
        fully determined (gamma starts at alpha + N_d / K, no random draw), so a second
        restart would repeat the first. alpha and eta left at None take the model's
        fitted values, so that the fit continues the saved one's objective.
    """

    topics: tuple[int, ...] = (5, 10, 20)
    restarts: int = 4
    max_iter: int = 100
    tol: float = 1e-5
    alpha: float | None = None
    eta: float | None = None
    test_fraction: float = 0.1
    observed_fraction: float = 0.5
    n_docs: int | None = None
    corpus: str = ""
    vocab: str = ""
    top_words: int = 10
    surgery_samples: int = 10
    seed: int = 0
    init: str = ""

    def validate(self) -> None:
        if not self.topics or min(self.topics) < 1:
            raise ConfigError(f"topics must be integers >= 1, got {self.topics}")
        if self.restarts < 1:
            raise ConfigError(f"restarts must be >= 1, got {self.restarts}")
        if self.max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {self.max_iter}")
        for name in ("alpha", "eta"):
            value = getattr(self, name)
            if value is not None:
                # The LDA models' own bound (checks.MAX_CONCENTRATION): refused here, at
                # --set time, not mid-run. ConfigError naming the setting.
                checks.concentration(value, name)
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if not 0 < self.observed_fraction < 1:
            raise ConfigError(f"observed_fraction must be in (0, 1), got {self.observed_fraction}")
        if self.n_docs is not None and self.n_docs < 2:
            raise ConfigError(f"n_docs must be >= 2, got {self.n_docs}")
        if self.surgery_samples < 1:
            raise ConfigError(f"surgery_samples must be >= 1, got {self.surgery_samples}")
        if self.top_words < 2:  # coherence scores pairs of top words
            raise ConfigError(f"top_words must be >= 2, got {self.top_words}")
        if self.vocab and not self.corpus:
            raise ConfigError("vocab is set but corpus is not; give both or neither")
        if self.init and self.restarts != 1:
            raise ConfigError(
                f"restarts must be 1 with init (got {self.restarts}): every restart would "
                "start from the same topics and gamma and end in the same optimum"
            )


PRESETS = {
    "smoke": Config(
        topics=(3,), restarts=2, max_iter=5, n_docs=200, top_words=5, surgery_samples=2
    ),
    # The tour (`elbolab demo`): the whole AP corpus, three topic counts, short fits.
    "tour": Config(topics=(5, 10, 20), restarts=2, max_iter=40, surgery_samples=4),
    "default": Config(),
    # Blei et al. (2003) fit AP with up to 200 topics; here a range that 2 cores finish.
    "paper": Config(topics=(10, 20, 50, 100), restarts=10, max_iter=500, tol=1e-6),
}


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


def _has_vocab(cfg: Config) -> bool:
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
    if not _has_vocab(cfg):
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


def cavi_settings(cfg: Config) -> CaviSettings:
    """How each K's restarts are fitted, from the study's settings."""
    return CaviSettings(
        restarts=cfg.restarts,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        alpha=cfg.alpha,
        eta=cfg.eta,
        seed=cfg.seed,
    )


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


def run(cfg: Config, inputs: dict, rundir):
    train, observed, heldout = inputs["train"], inputs["observed"], inputs["heldout"]
    corpus = inputs["corpus"]
    per_k, arrays, timings = {}, {}, {}
    # Every restart of every K at once, so that a cluster gets all of them together.
    init = inputs.get("init")
    settings = cavi_settings(cfg)
    units = {k: restart_units(settings, k, train, rundir, f"fit_K{k}", init) for k in cfg.topics}
    fits = rundir.cached_map(
        {key: fn for per_k_units in units.values() for key, fn in per_k_units.items()},
        timings,
        desc="LDA restarts",
    )
    for k in cfg.topics:
        keys = list(units[k])
        model = LDA.merged([fits[key] for key in keys])
        # After every fit, like arrays.npz: a resumed run writes the same bytes again.
        model_file = model.save(
            rundir.models / f"lda-k{k}.npz", vocab=corpus.vocab if _has_vocab(cfg) else None
        )
        finals = np.array([r.elbo for r in model.restarts_])
        history = restart_histories(model)
        result = {
            "elbo_best": model.elbo_,
            "elbo_per_token_best": model.elbo_ / train.n_tokens,
            "elbo_restarts": finals.tolist(),
            "elbo_spread": float(finals.max() - finals.min()),
            "best_restart": model.best_,
            "model": model_file.relative_to(rundir.path).as_posix(),
            "n_iter": model.n_iter_,
            "alpha": model.alpha_,
            "eta": model.eta_,
            # Summed over restarts: the wall time of a serial fit.
            "fit_seconds": sum(timings[f"{key}_seconds"] for key in keys),
            "top_words": top_words(model.components_, corpus.vocab, cfg.top_words),
            "coherence": coherence(model.components_, train, cfg.top_words),
            "elbo_largest_drop": largest_drop(history),
            "sklearn_elbo_best": rundir.cached(
                f"sklearn_elbo_K{k}", lambda m=model: sklearn_elbo(m, train), timings
            ),
            "surgery": rundir.cached(
                f"surgery_K{k}",
                lambda m=model: surgery_terms(m, cfg.surgery_samples, cfg.seed),
                timings,
            ),
            "surgery_best_prior": rundir.cached(
                f"surgery_best_prior_K{k}",
                lambda m=model: surgery_terms(m, cfg.surgery_samples, cfg.seed, True),
                timings,
            ),
        }
        if observed is not None:
            result["completion"] = rundir.cached(
                f"completion_K{k}", lambda m=model: m.completion_perplexity(observed, heldout)
            )
        per_k[str(k)] = result
        arrays[f"history_K{k}"] = history
        arrays[f"components_K{k}"] = model.components_
    metrics = {
        "data": {
            "source": inputs["source"],
            "n_docs": corpus.n_docs,
            "n_words": corpus.n_words,
            "n_tokens": corpus.n_tokens,
            "n_train_docs": train.n_docs,
            "n_train_tokens": train.n_tokens,
            "n_test_docs": 0 if observed is None else observed.n_docs,
            "n_heldout_tokens": 0 if heldout is None else heldout.n_tokens,
        },
        "per_k": per_k,
        "timings": timings,
    }
    return metrics, arrays


# A marginal KL of at least this many nats per document counts as "of the order of
# nats", the size the ``surgery`` study measures for VAEs on MNIST (latent sizes 10-20).
_NATS = 1.0


def _render_surgery(report, metrics: dict, ks: list[int]) -> None:
    """The ELBO-surgery table and the comparison with a VAE's numbers."""
    rows, margs, best_margs = [], [], []
    for k in ks:
        r = metrics["per_k"][str(k)]["surgery"]
        b = metrics["per_k"][str(k)]["surgery_best_prior"]
        margs.append(r["marginal_kl"])
        best_margs.append(b["marginal_kl"])
        rows.append(
            [
                k,
                f"{metrics['per_k'][str(k)]['alpha']:.3g}",
                f"{r['average_kl']:.3f}",
                f"{r['mutual_info']:.3f} ± {r['se_mutual_info']:.3f}",
                f"{r['marginal_kl']:.3f} ± {r['se_marginal_kl']:.3f}",
                f"{r['marginal_kl'] / r['average_kl']:.0%}",
                f"{min(b['alpha']):.3g} to {max(b['alpha']):.3g}",
                f"{b['marginal_kl']:.3f} ± {b['se_marginal_kl']:.3f}",
            ]
        )
    first = metrics["per_k"][str(ks[0])]["surgery"]
    report.paragraph(
        "ELBO surgery (Hoffman & Johnson 2016) of the best restart's document-topic "
        "posteriors q(theta_d) = Dirichlet(gamma_d) over the training documents: the "
        "average KL(q(theta_d) || Dirichlet(alpha)) of the ELBO equals the mutual "
        f"information between the document index and theta (at most log D = "
        f"{first['log_n']:.3f} nats) plus the marginal KL from the aggregate posterior "
        "(1/D) sum_d q(theta_d) to the prior, which a prior equal to the aggregate "
        "posterior would remove from the bound. The marginal KL is estimated by Monte "
        f"Carlo ({first['n_samples']} draws per document, the mixture of all D posteriors "
        "evaluated exactly); ± is one standard error. The model's alpha is held fixed "
        "during the fit (not estimated as in Blei et al.'s 2003 variational EM), so the "
        "last two columns replace it by the Dirichlet closest to the posteriors (the "
        "minimizer of the average KL, hence of the marginal KL over all Dirichlet priors, "
        "the mutual information being the same for every prior): what is left there no "
        "Dirichlet prior removes."
    )
    report.table(
        [
            "K",
            "alpha",
            "average KL (nats/doc)",
            "I(d; theta) (nats/doc)",
            "marginal KL (nats/doc)",
            "marginal / average KL",
            "closest Dirichlet: alpha_k",
            "its marginal KL (nats/doc)",
        ],
        rows,
        caption="ELBO surgery of LDA's document-topic posteriors, nats per training document.",
    )
    below = [k for k, m in zip(ks, best_margs, strict=True) if m < _NATS]
    above = [k for k in ks if k not in below]
    parts = []
    if below:
        parts.append(
            f"better than a VAE's matches N(0, I) at K = {', '.join(map(str, below))} (under "
            f"{_NATS:g} nat per document)"
        )
    if above:
        parts.append(
            f"no better at K = {', '.join(map(str, above))} (at least {_NATS:g} nat, the "
            "order of a VAE's)"
        )
    trend = ""
    if len(ks) > 1 and np.all(np.diff(best_margs) > 0):
        trend = "; the mismatch grows with the number of topics"
    report.paragraph(
        "Marginal KL with the closest Dirichlet prior: "
        + ", ".join(f"K = {k}: {m:.2f}" for k, m in zip(ks, best_margs, strict=True))
        + " nats per document. The surgery study measures a VAE's marginal KL on binarized "
        "MNIST of the order of nats for latent sizes 10 and 20. So LDA's aggregate posterior "
        f"matches a Dirichlet prior {' and '.join(parts)}{trend}."
    )


def _start_sentence(init: str | None) -> str:
    """Where the fits started: the saved model of ``init`` or random topics."""
    if init:
        return f"The fit starts from the topics of the saved model {init} (init)."
    return (
        "Every restart starts from its own random topics (restart r from seed "
        "[seed, r]), so its result does not depend on where it ran."
    )


def render(rundir):
    """Figures and report from config.json, metrics.json and arrays.npz."""
    from ...report import Report, plots

    metrics = rundir.read_json("metrics.json")
    arrays = rundir.load_arrays()
    data = metrics["data"]
    ks = [int(k) for k in metrics["per_k"]]
    tokens = data["n_train_tokens"]

    report = Report(
        "LDA by batch CAVI",
        f"{data['source']}: {data['n_train_docs']} training documents, "
        f"{tokens:,} tokens, {data['n_words']:,} words",
    )
    report.paragraph(
        "The ELBO is the full evidence lower bound in nats with every Dirichlet normalizer, "
        "summed over the training documents; here it is divided by the number of training "
        "tokens. " + _start_sentence(rundir.read_json("config.json")["config"].get("init"))
    )
    fig, axes = plots.new_figure(width=6.4 * min(len(ks), 3) / 1.5, height=4.0, ncols=len(ks))
    for ax, k in zip(np.atleast_1d(axes), ks, strict=True):
        history = arrays[f"history_K{k}"] / tokens
        its = np.arange(1, history.shape[0] + 1)
        plots.line_plot(
            ax,
            its,
            {f"restart {r}": history[:, r] for r in range(history.shape[1])},
            xlabel="CAVI iteration",
            ylabel="ELBO per token (nats)",
            title=f"K = {k}",
        )
    figure = rundir.save_figure(fig, "elbo_curves")
    report.figure(
        figure,
        f"ELBO per training token (nats) after each CAVI iteration, one line per restart "
        f"({tokens:,} tokens). The curves never decrease.",
    )

    fig, ax = plots.new_figure()
    for k in ks:
        finals = np.array(metrics["per_k"][str(k)]["elbo_restarts"]) / tokens
        ax.scatter(np.full(finals.shape, k), finals, alpha=0.7)
    ax.set_xlabel("number of topics K")
    ax.set_ylabel("final ELBO per token (nats)")
    ax.set_xticks(ks)
    report.figure(
        rundir.save_figure(fig, "optima_spread"),
        "Final ELBO per training token (nats) of every restart: the spread of the local "
        "optima CAVI ends in from different random initializations.",
    )

    rows = []
    for k in ks:
        r = metrics["per_k"][str(k)]
        completion = r.get("completion")
        rows.append(
            [
                k,
                f"{r['elbo_per_token_best']:.4f}",
                f"{r['elbo_spread'] / tokens:.4f}",
                r["n_iter"],
                "" if completion is None else f"{completion['perplexity']:.1f}",
                _coherence_cell(r, "umass_mean"),
                _coherence_cell(r, "npmi_mean"),
                f"{r['fit_seconds']:.1f}",
            ]
        )
    report.table(
        [
            "K",
            "best ELBO / token (nats)",
            "spread across restarts (nats/token)",
            "iterations",
            "completion perplexity",
            "mean UMass",
            "mean NPMI",
            "fit seconds",
        ],
        rows,
        caption="Summary per K. Perplexity is exp(-held-out log-likelihood per token, base e) "
        f"on {data['n_heldout_tokens']:,} held-out tokens of {data['n_test_docs']} test "
        "documents; lower is better. " + _COHERENCE_NOTE,
    )
    if all("surgery_best_prior" in metrics["per_k"][str(k)] for k in ks):
        _render_surgery(report, metrics, ks)
    else:
        report.paragraph("This run predates the ELBO surgery of LDA; run it again for it.")
    if any("completion" in metrics["per_k"][str(k)] for k in ks):
        fig, ax = plots.new_figure()
        ppl = [metrics["per_k"][str(k)]["completion"]["perplexity"] for k in ks]
        ax.plot(ks, ppl, marker="o")
        ax.set_xlabel("number of topics K")
        ax.set_ylabel("document-completion perplexity")
        ax.set_xticks(ks)
        report.figure(
            rundir.save_figure(fig, "perplexity"),
            "Held-out document-completion perplexity against K "
            f"({data['n_heldout_tokens']:,} held-out tokens; lower is better).",
        )
    for k in ks:
        r = metrics["per_k"][str(k)]
        coh = r.get("coherence")  # absent from runs that predate it
        report.table(
            ["topic", "top words"] + (["UMass", "NPMI"] if coh else []),
            [
                [i, " ".join(w)]
                + ([f"{coh['umass'][i]:.3f}", f"{coh['npmi'][i]:.3f}"] if coh else [])
                for i, w in enumerate(r["top_words"])
            ],
            caption=f"K = {k}: the most probable words of each topic (best restart)"
            + (f", with their coherence. {_COHERENCE_NOTE}" if coh else "."),
        )
    return report


_COHERENCE_NOTE = (
    "Coherence of each topic's top words in the training documents, as the mean over "
    "word pairs: UMass (Mimno et al. 2011; log of the share of the documents of the more "
    "probable word that also hold the other, +1 co-document smoothing; about 0 at best, more "
    "negative is worse) and NPMI (Bouma 2009; Roeder et al. 2015; from -1, never together, "
    "through 0, independent, to 1, always together)."
)


def _coherence_cell(result: dict, key: str) -> str:
    coh = result.get("coherence")
    return "" if coh is None else f"{coh[key]:.3f}"


def claims(cfg: Config, metrics: dict) -> list:
    from ..claims import NOT_CHECKED, Claim, verdict

    per_k = {int(k): r for k, r in metrics["per_k"].items()}
    ks = sorted(per_k)
    tokens = metrics["data"]["n_train_tokens"]
    out = []

    have = [k for k in ks if per_k[k]["sklearn_elbo_best"] is not None]
    rel = {
        k: abs(per_k[k]["elbo_best"] - per_k[k]["sklearn_elbo_best"])
        / abs(per_k[k]["sklearn_elbo_best"])
        for k in have
    }
    same = [k for k in have if rel[k] <= 1e-8]
    out.append(
        Claim(
            claim="the ELBO reported here (every Dirichlet normalizer included) is the bound "
            "scikit-learn's LatentDirichletAllocation computes for the same topics and "
            "document posteriors",
            reference="Blei, Ng & Jordan 2003, appendix A.3; scikit-learn's "
            "LatentDirichletAllocation._approx_bound (after Hoffman, Blei & Bach 2010)",
            measured="; ".join(
                f"K = {k}: {per_k[k]['elbo_per_token_best']:.5f} here, "
                f"{per_k[k]['sklearn_elbo_best'] / tokens:.5f} scikit-learn nats/token "
                f"(relative difference {rel[k]:.1e})"
                for k in have
            )
            or "nothing: scikit-learn is not installed",
            verdict=verdict(bool(have) and len(same) == len(ks), partly=bool(same))
            if have
            else NOT_CHECKED,
            reason="the best restart's lambda and gamma scored by both codes; holds when "
            "they agree to a relative 1e-8 for every K"
            + ("" if have else " (pip install scikit-learn to check it)"),
        )
    )

    drops = {k: per_k[k]["elbo_largest_drop"] for k in ks}
    flat = [k for k in ks if drops[k] <= 1e-9 * abs(per_k[k]["elbo_best"])]
    out.append(
        Claim(
            claim="every CAVI iteration (E-step, then M-step) raises the ELBO or leaves it "
            "unchanged",
            reference="Blei, Ng & Jordan 2003, section 5.3; Blei, Kucukelbir & McAuliffe "
            "2017, section 2.4",
            measured="largest one-iteration drop over all restarts: "
            + ", ".join(f"K = {k}: {drops[k]:.2e} nats" for k in ks),
            verdict=verdict(len(flat) == len(ks), partly=bool(flat)),
            reason="every restart's ELBO history; holds when no iteration lowers it by more "
            "than 1e-9 of its size (rounding)",
        )
    )

    threshold = 10 * cfg.tol
    spread = {k: per_k[k]["elbo_spread"] / abs(per_k[k]["elbo_best"]) for k in ks}
    apart = [k for k in ks if spread[k] > threshold]
    converged = all(per_k[k]["n_iter"] < cfg.max_iter for k in ks)
    out.append(
        Claim(
            claim="the ELBO is not concave: CAVI from different random initializations ends "
            "in different local optima",
            reference="Blei, Kucukelbir & McAuliffe 2017, section 2.4",
            measured=f"{cfg.restarts} restarts; spread of the final ELBOs "
            + ", ".join(f"K = {k}: {per_k[k]['elbo_spread'] / tokens:.4f}" for k in ks)
            + " nats/token"
            + ("" if converged else f" (not every restart converged in {cfg.max_iter} iterations)"),
            verdict=verdict(
                cfg.restarts > 1 and converged and len(apart) == len(ks),
                partly=cfg.restarts > 1 and bool(apart),
            ),
            reason=f"holds when every restart converged and the final ELBOs of each K differ "
            f"by more than {threshold:.0e} of their size (10 x the stopping tolerance)",
        )
    )

    done = [k for k in ks if "completion" in per_k[k]]
    ppl = [per_k[k]["completion"]["perplexity"] for k in done]
    falls = len(done) >= 2 and bool(np.all(np.diff(ppl) < 0))
    out.append(
        Claim(
            claim="held-out perplexity falls as topics are added (on AP, over the topic "
            "counts fitted here)",
            reference="Blei, Ng & Jordan 2003, section 7.1, figure 9",
            measured=", ".join(f"K = {k}: {p:.1f}" for k, p in zip(done, ppl, strict=True))
            or "no held-out documents (test_fraction = 0)",
            verdict=verdict(falls, partly=len(done) >= 2 and ppl[-1] < ppl[0]),
            reason="document-completion perplexity (theta from half of each test document), "
            "not the paper's whole-document bound; holds when it falls at every step in K, "
            "partly when only the largest K beats the smallest"
            + ("" if len(done) >= 2 else "; needs two topic counts or more"),
        )
    )

    surg = {k: per_k[k]["surgery"] for k in ks}
    best = {k: per_k[k]["surgery_best_prior"] for k in ks}
    big = [
        k
        for k in ks
        if surg[k]["marginal_kl"] - 4 * surg[k]["se_marginal_kl"] >= _NATS
        and surg[k]["marginal_kl"] >= 0.1 * surg[k]["average_kl"]
    ]
    stays = [k for k in big if best[k]["marginal_kl"] - 4 * best[k]["se_marginal_kl"] >= _NATS]
    out.append(
        Claim(
            claim="as Hoffman & Johnson found for VAEs, the prior is a poor match to the "
            "aggregate posterior: for LDA's document-topic proportions too the marginal KL "
            "is of the order of nats (as the surgery study measures for VAEs on MNIST), a "
            "sizeable part of the KL term, and no Dirichlet prior removes it. This answers "
            "whether a classical model's aggregate posterior matches its prior better: no",
            reference="Hoffman & Johnson 2016, section 3 (the finding for VAEs)",
            measured="; ".join(
                f"K = {k}: marginal KL {surg[k]['marginal_kl']:.2f} ± "
                f"{surg[k]['se_marginal_kl']:.2f} of average KL {surg[k]['average_kl']:.2f} "
                f"(I = {surg[k]['mutual_info']:.2f}, log D = {surg[k]['log_n']:.2f}); closest "
                f"Dirichlet prior {best[k]['marginal_kl']:.2f} ± {best[k]['se_marginal_kl']:.2f}"
                for k in ks
            )
            + " nats/doc",
            verdict=verdict(len(stays) == len(ks), partly=bool(big)),
            reason=f"holds when, for every K, the marginal KL is at least {_NATS:g} nat per "
            "training document (4 standard errors included) and 10% of the average KL under "
            f"the model's fixed alpha ({'1/K' if cfg.alpha is None else cfg.alpha}), and still "
            f"{_NATS:g} nat under the Dirichlet prior closest to the posteriors; partly when "
            "only the first holds for some K",
        )
    )
    return out
