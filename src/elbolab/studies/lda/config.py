"""Settings of the ``lda`` study: :class:`Config` (flat fields, the CLI's ``--set`` keys)
and its named :data:`PRESETS`."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks
from ...errors import ConfigError


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
        checks.integers(self.topics, "topics", 1)
        for name in ("restarts", "max_iter", "surgery_samples"):
            checks.integer(getattr(self, name), name, 1)
        checks.integer(self.top_words, "top_words", 2)  # coherence scores pairs of top words
        for name in ("alpha", "eta"):
            value = getattr(self, name)
            if value is not None:
                # The LDA models' own bound (checks.MAX_CONCENTRATION): refused here, at
                # --set time, not mid-run. ConfigError naming the setting.
                checks.concentration(value, name)
        checks.number(self.test_fraction, "test_fraction", minimum=0.0, maximum=1.0, open_max=True)
        checks.fraction(self.observed_fraction, "observed_fraction")
        if self.n_docs is not None:
            checks.integer(self.n_docs, "n_docs", 2)
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
