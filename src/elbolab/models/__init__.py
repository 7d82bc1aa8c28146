"""Models: LDA (CAVI) now; pPCA, linear and deep VAEs as their studies land."""

from .lda import LDA

__all__ = ["LDA"]
