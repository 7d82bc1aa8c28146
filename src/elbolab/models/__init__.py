"""Models: LDA (CAVI), probabilistic PCA, the linear VAE, VAEs with normal and VampPrior
priors, and their trainer; :func:`save` and :func:`load` keep a trained model in a file
(spec and weights, no pickle) that loads on any machine."""

from .lda import LDA
from .linear_vae import LinearVAE, fit_linear_vae, fit_linear_vae_lbfgs
from .ppca import PPCA
from .saving import load, save
from .trainer import train
from .vae import VAE

__all__ = [
    "LDA",
    "PPCA",
    "VAE",
    "LinearVAE",
    "fit_linear_vae",
    "fit_linear_vae_lbfgs",
    "train",
    "save",
    "load",
]
