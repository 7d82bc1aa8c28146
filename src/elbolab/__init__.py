"""elbolab: see inside the ELBO of variational inference."""

__version__ = "0.1.0"
