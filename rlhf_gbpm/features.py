"""Feature maps phi(x, a) into the closed unit ball of R^d.

Three kinds: a fixed arm table (no contexts), a finite set of contexts with a table each,
and continuous contexts x ~ N(0, I_m) with phi(x, a) of unit norm. Contexts are drawn from
uniform numbers so that envs can use counter-based streams (see ``rlhf_gbpm._random``).
"""

from __future__ import annotations

import abc
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from rlhf_gbpm._validation import as_generator, check_array, check_scalar, check_simplex

__all__ = [
    "FeatureMap",
    "ArmTable",
    "FiniteContexts",
    "ContinuousContexts",
    "random_unit_features",
]


def random_unit_features(shape: tuple[int, ...], seed=None) -> np.ndarray:
    """Gaussian vectors normalized to unit norm along the last axis.

    Args:
        shape: Output shape (..., d).
        seed: Seed or Generator.

    Returns:
        Array of ``shape`` whose last-axis rows have norm 1.
    """
    rng = as_generator(seed)
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _check_unit_ball(features: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(features, axis=-1)
    if norms.size and norms.max() > 1.0 + 1e-9:
        raise ValueError(
            f"{name} rows must lie in the unit ball (||phi|| <= 1), got max norm {norms.max():.6g}."
        )
    return features


class FeatureMap(abc.ABC):
    """Base class: a map from contexts to feature tables of shape (K, d).

    Attributes:
        num_actions: K.
        dim: d.
        num_contexts: C for finite maps, None for continuous contexts.
        uniforms_per_context: How many uniform numbers one context draw consumes.
    """

    num_actions: int
    dim: int
    num_contexts: int | None
    uniforms_per_context: int

    @abc.abstractmethod
    def contexts_from_uniform(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms of shape (..., uniforms_per_context) to contexts.

        Returns:
            Finite maps: int indices of shape (...). Continuous: x of shape (..., m).
        """
        ...

    @abc.abstractmethod
    def features(self, context: np.ndarray) -> np.ndarray:
        """Feature tables of contexts, shape (..., K, d)."""
        ...

    def sample(self, size: int, seed=None) -> np.ndarray:
        """Draw ``size`` contexts with a numpy Generator (for oracles and Monte Carlo)."""
        rng = as_generator(seed)
        return self.contexts_from_uniform(rng.random((size, self.uniforms_per_context)))


@dataclass(frozen=True)
class FiniteContexts(FeatureMap):
    """A finite set of C contexts, each with its feature table.

    Attributes:
        table: Features, shape (C, K, d), rows in the unit ball.
        probs: Context distribution d0, shape (C,); uniform when None.
    """

    table: np.ndarray
    probs: np.ndarray | None = None
    _cdf: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        table = check_array(self.table, "table", shape=("C", "K", "d"))
        _check_unit_ball(table, "table")
        if table.shape[1] < 2:
            raise ValueError(f"K == {table.shape[1]}, must be >= 2.")
        c = table.shape[0]
        probs = np.full(c, 1.0 / c) if self.probs is None else check_simplex(
            self.probs, "probs", shape=(c,))
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "probs", probs)
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        object.__setattr__(self, "_cdf", cdf)

    num_actions = property(lambda self: self.table.shape[1])
    dim = property(lambda self: self.table.shape[2])
    num_contexts = property(lambda self: self.table.shape[0])
    uniforms_per_context = 1

    def contexts_from_uniform(self, u):  # noqa: D102
        u = np.asarray(u, dtype=float)[..., 0]
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), self.num_contexts - 1)

    def features(self, context):  # noqa: D102
        return self.table[np.asarray(context, dtype=np.intp)]


class ArmTable(FiniteContexts):
    """No contexts: one fixed table of K arms (the authors' experiment setting).

    Args:
        features: Arm features, shape (K, d), rows in the unit ball.
    """

    def __init__(self, features):
        features = check_array(features, "features", shape=("K", "d"))
        super().__init__(table=features[None])

    @property
    def arms(self) -> np.ndarray:
        """The arm table, shape (K, d)."""
        return self.table[0]


@dataclass(frozen=True)
class ContinuousContexts(FeatureMap):
    """Continuous contexts x ~ N(0, I_m) with phi(x, a) = v / ||v||, v = base_a + mixing_a x.

    Attributes:
        base: Arm base features, shape (K, d).
        mixing: Context loadings, shape (K, d, m).
    """

    base: np.ndarray
    mixing: np.ndarray

    def __post_init__(self):
        sizes: dict[str, int] = {}
        base = check_array(self.base, "base", shape=("K", "d"), sizes=sizes)
        mixing = check_array(self.mixing, "mixing", shape=("K", "d", "m"), sizes=sizes)
        if sizes["K"] < 2:
            raise ValueError(f"K == {sizes['K']}, must be >= 2.")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "mixing", mixing)

    num_actions = property(lambda self: self.base.shape[0])
    dim = property(lambda self: self.base.shape[1])
    num_contexts = None
    uniforms_per_context = property(lambda self: self.mixing.shape[2])

    @classmethod
    def random(cls, K: int, d: int, m: int = 3, *, scale: float = 0.5, seed=None):
        """Random base features and loadings.

        Args:
            K: Number of actions, >= 2.
            d: Feature dimension, >= 2.
            m: Context dimension, >= 1.
            scale: Size of the context effect relative to the unit base features.
            seed: Seed or Generator.

        Returns:
            A :class:`ContinuousContexts`.
        """
        check_scalar(K, "K", numbers.Integral, min_val=2)
        check_scalar(d, "d", numbers.Integral, min_val=2)
        check_scalar(m, "m", numbers.Integral, min_val=1)
        check_scalar(scale, "scale", numbers.Real, min_val=0.0)
        rng = as_generator(seed)
        base = random_unit_features((K, d), rng)
        mixing = scale * rng.standard_normal((K, d, m)) / np.sqrt(d * m)
        return cls(base=base, mixing=mixing)

    def contexts_from_uniform(self, u):  # noqa: D102
        u = np.clip(np.asarray(u, dtype=float), 2.0**-53, 1.0 - 2.0**-53)
        return ndtri(u)

    def features(self, context):  # noqa: D102
        x = np.asarray(context, dtype=float)
        v = self.base + np.einsum("kdm,...m->...kd", self.mixing, x)
        norm = np.linalg.norm(v, axis=-1, keepdims=True)
        return v / np.maximum(norm, 1e-12)
