"""Structured parameters <-> one flat vector, so that path and plane tools see R^n.

The path methods (:mod:`elbolab.landscape.paths`, :mod:`elbolab.landscape.elastic_band`,
:mod:`elbolab.landscape.bezier`) and the plane tools (:mod:`elbolab.landscape.plane`)
work on vectors: a path is a ``(P, n)`` tensor
of pivots. A model's variational parameters are a dict of named tensors (for LDA,
``{"lam": (K, V), "gamma": (D, K)}``); :class:`Flattener` remembers the names and shapes
and maps one to the other in both directions, batched over any leading dimensions, with
views and concatenation only, so gradients flow through both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["Flattener"]


class Flattener:
    """Map a dict of named tensors to one vector and back, remembering the shapes.

    Parameters
    ----------
    template : mapping of str to tensor, array or shape
        One entry per parameter: a tensor (or array) whose shape (and, for the first
        floating one, dtype) is remembered, or a shape (tuple of ints / ``torch.Size``).
        The order of the mapping is the order of the blocks in the vector.
    dtype : torch.dtype, optional
        dtype of the flat vectors; default: the dtype of the first floating tensor in
        ``template``, else ``torch.get_default_dtype()``.

    Attributes
    ----------
    names : tuple of str
        Parameter names in vector order.
    shapes : tuple of torch.Size
        Shape of one (unbatched) copy of each parameter.
    sizes : tuple of int
        Number of entries of each parameter.
    offsets : tuple of int
        Start of each parameter's block in the vector.
    n : int
        Length of the vector (sum of ``sizes``).

    Examples
    --------
    >>> fl = Flattener({"lam": torch.ones(3, 5), "gamma": torch.ones(4, 3)})
    >>> x = fl.flatten({"lam": torch.ones(3, 5), "gamma": torch.zeros(4, 3)})   # (27,)
    >>> fl.unflatten(torch.zeros(7, fl.n))["lam"].shape                       # batched
    torch.Size([7, 3, 5])
    >>> f_vec = fl.wrap(lambda params: params["lam"].sum(dim=(-2, -1)))     # f on (P, n)
    """

    def __init__(
        self,
        template: Mapping[str, torch.Tensor | np.ndarray | Sequence[int]],
        dtype: torch.dtype | None = None,
    ):
        if not isinstance(template, Mapping) or len(template) == 0:
            raise ConfigError("Flattener: template must be a non-empty dict of name -> tensor")
        names, shapes = [], []
        first_dtype = None
        for name, spec in template.items():
            if not isinstance(name, str):
                raise ConfigError(f"Flattener: parameter names must be str, got {name!r}")
            if isinstance(spec, torch.Tensor):
                shape = spec.shape
                if first_dtype is None and spec.is_floating_point():
                    first_dtype = spec.dtype
            elif isinstance(spec, np.ndarray):
                shape = torch.Size(spec.shape)
                if first_dtype is None and np.issubdtype(spec.dtype, np.floating):
                    first_dtype = torch.from_numpy(np.zeros(0, dtype=spec.dtype)).dtype
            else:
                try:
                    shape = torch.Size(int(s) for s in spec)
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"Flattener: template[{name!r}] must be a tensor, an array or a "
                        f"shape; got {type(spec).__name__}"
                    ) from None
                if any(s < 0 for s in shape):
                    raise ConfigError(f"Flattener: template[{name!r}] has a negative size")
            names.append(name)
            shapes.append(torch.Size(shape))
        self.names = tuple(names)
        self.shapes = tuple(shapes)
        self.sizes = tuple(math.prod(s) for s in shapes)
        offsets, total = [], 0
        for size in self.sizes:
            offsets.append(total)
            total += size
        self.offsets = tuple(offsets)
        self.n = total
        self.dtype = dtype or first_dtype or torch.get_default_dtype()

    def __repr__(self) -> str:
        blocks = ", ".join(f"{k}: {tuple(s)}" for k, s in zip(self.names, self.shapes, strict=True))
        return f"Flattener({blocks}; n={self.n})"

    def __len__(self) -> int:
        return self.n

    def flatten(self, params: Mapping[str, torch.Tensor | np.ndarray]) -> torch.Tensor:
        """Concatenate the parameters into vectors.

        Parameters
        ----------
        params : mapping of str to tensor
            Exactly the names of the template; ``params[name]`` has shape
            ``(*batch, *shapes[name])`` with the same leading ``batch`` shape for all.

        Returns
        -------
        x : (*batch, n) tensor
            In ``self.dtype``; differentiable with respect to the inputs.
        """
        if not isinstance(params, Mapping):
            raise ConfigError("Flattener.flatten: params must be a dict of name -> tensor")
        missing = [k for k in self.names if k not in params]
        extra = [k for k in params if k not in self.names]
        if missing or extra:
            raise ConfigError(
                f"Flattener.flatten: parameter names differ from the template "
                f"(missing {missing}, unexpected {extra})"
            )
        batch = None
        pieces = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            t = torch.as_tensor(params[name]).to(self.dtype)
            nd = len(shape)
            if t.dim() < nd or tuple(t.shape[t.dim() - nd :]) != tuple(shape):
                raise ConfigError(
                    f"Flattener.flatten: params[{name!r}] has shape {tuple(t.shape)}, "
                    f"expected (*batch, {', '.join(map(str, shape))})"
                )
            b = t.shape[: t.dim() - nd]
            if batch is None:
                batch = b
            elif b != batch:
                raise ConfigError(
                    f"Flattener.flatten: params[{name!r}] has batch shape {tuple(b)}, "
                    f"others have {tuple(batch)}"
                )
            pieces.append(t.reshape(*b, -1))
        device = pieces[0].device
        return torch.cat([p.to(device) for p in pieces], dim=-1)

    def unflatten(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split vectors into named tensors (views of ``x`` where possible).

        Parameters
        ----------
        x : (*batch, n) tensor

        Returns
        -------
        params : dict of str to tensor
            ``params[name]`` has shape ``(*batch, *shapes[name])``.
        """
        x = torch.as_tensor(x)
        if x.dim() < 1 or x.shape[-1] != self.n:
            raise ConfigError(
                f"Flattener.unflatten: x has shape {tuple(x.shape)}, expected (*batch, {self.n})"
            )
        batch = x.shape[:-1]
        return {
            name: x[..., off : off + size].reshape(tuple(batch) + tuple(shape))
            for name, shape, size, off in zip(
                self.names, self.shapes, self.sizes, self.offsets, strict=True
            )
        }

    def wrap(
        self, fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Turn ``fn(dict of (P, *shape)) -> (P,)`` into ``f((P, n)) -> (P,)`` for path tools."""

        def f(x: torch.Tensor) -> torch.Tensor:
            return fn(self.unflatten(x))

        return f
