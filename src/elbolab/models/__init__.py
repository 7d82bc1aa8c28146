"""Models: LDA (CAVI), probabilistic PCA, the linear VAE, VAEs with normal and VampPrior
priors, and their trainer."""

from .lda import LDA
from .linear_vae import LinearVAE, fit_linear_vae
from .ppca import PPCA
from .trainer import train
from .vae import VAE

__all__ = ["LDA", "PPCA", "VAE", "LinearVAE", "fit_linear_vae", "train"]
