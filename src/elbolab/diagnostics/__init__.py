"""Diagnostics: ELBO surgery, posterior collapse, importance-sampled log-likelihood,
topic coherence."""

from .coherence import Coherence, topic_coherence
from .collapse import active_units, collapse_curve, collapsed_fraction, kl_per_dimension
from .likelihood import log_likelihood
from .surgery import (
    best_dirichlet_prior,
    dirichlet_surgery,
    log_aggregate_posterior,
    surgery,
    surgery_model,
)

__all__ = [
    "Coherence",
    "active_units",
    "best_dirichlet_prior",
    "collapse_curve",
    "collapsed_fraction",
    "dirichlet_surgery",
    "kl_per_dimension",
    "log_aggregate_posterior",
    "log_likelihood",
    "surgery",
    "surgery_model",
    "topic_coherence",
]
