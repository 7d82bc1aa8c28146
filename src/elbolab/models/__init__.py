"""Models: LDA (CAVI), VAEs with normal and VampPrior priors, their trainer."""

from .lda import LDA
from .trainer import train
from .vae import VAE

__all__ = ["LDA", "VAE", "train"]
