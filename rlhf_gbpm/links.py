"""Link functions mu of the GBPM: P(a1 beats a2) = mu(phi1^T Theta phi2).

Every link satisfies mu(z) + mu(-z) = 1, so mu_dot is even and the payoff
mu(Phi Theta Phi^T) - 1/2 of a skew Theta is skew-symmetric.

References:
    Lee, Hong, Jun, Yun, Yun. "Regularized Online RLHF with Generalized Bilinear
    Preferences", arXiv:2602.23116, 2026, Definition 2.2.
"""

from __future__ import annotations

import abc
import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import special

from rlhf_gbpm._validation import check_scalar

__all__ = ["Link", "LogisticLink", "LinearLink", "ProbitLink", "get_link", "LINKS", "z_bound"]

NORMS = ("frobenius", "nuclear")


def z_bound(S: float, norm: str = "nuclear") -> float:
    """Largest |phi1^T Theta phi2| over unit-norm features and skew Theta of norm <= S.

    Args:
        S: Norm bound on Theta, > 0.
        norm: ``"nuclear"`` (bound S/2: singular values of a skew matrix come in pairs)
            or ``"frobenius"`` (bound S/sqrt(2)).

    Returns:
        The bound on |z|.
    """
    check_scalar(S, "S", numbers.Real, min_val=0.0, include_boundaries="neither")
    if norm not in NORMS:
        raise ValueError(f"norm == {norm!r}, must be one of {NORMS}.")
    return S / 2.0 if norm == "nuclear" else S / math.sqrt(2.0)


@dataclass(frozen=True)
class Link(abc.ABC):
    """A link function mu: R -> [0, 1] with mu(z) + mu(-z) = 1.

    Subclasses implement ``mu``, ``mu_dot``, ``mu_ddot`` and ``log_partition`` (an
    antiderivative m of mu, so that the (quasi-)likelihood loss is m(z) - r z).
    """

    name = "link"

    @abc.abstractmethod
    def mu(self, z: np.ndarray) -> np.ndarray:
        """Preference probability, elementwise, same shape as ``z``."""
        ...

    @abc.abstractmethod
    def mu_dot(self, z: np.ndarray) -> np.ndarray:
        """Derivative of mu, elementwise."""
        ...

    @abc.abstractmethod
    def mu_ddot(self, z: np.ndarray) -> np.ndarray:
        """Second derivative of mu, elementwise."""
        ...

    @abc.abstractmethod
    def log_partition(self, z: np.ndarray) -> np.ndarray:
        """An antiderivative m of mu (m' = mu), elementwise."""
        ...

    @property
    @abc.abstractmethod
    def L_mu(self) -> float:
        """Upper bound on mu_dot over the real line."""
        ...

    @property
    @abc.abstractmethod
    def R_s(self) -> float:
        """Self-concordance constant: |mu_ddot| <= R_s mu_dot."""
        ...

    def kappa(self, S: float, norm: str = "nuclear") -> float:
        """Global curvature: min of mu_dot over |z| <= z_bound(S, norm).

        Args:
            S: Norm bound on Theta.
            norm: Which norm S bounds (see :func:`z_bound`).

        Returns:
            kappa > 0.
        """
        zmax = z_bound(S, norm)
        self.check_bound(S, norm)
        return float(self.mu_dot(np.asarray(zmax)))

    def check_bound(self, S: float, norm: str = "nuclear") -> float:
        """Check that mu stays a valid probability on |z| <= z_bound(S, norm).

        Returns:
            S, unchanged.
        """
        z_bound(S, norm)
        return S

    def get_config(self) -> dict:
        """Constructor arguments, for manifests."""
        return {"name": self.name}


@dataclass(frozen=True)
class LogisticLink(Link):
    """mu(z) = 1 / (1 + exp(-z)); L_mu = 1/4, R_s = 1 (Bradley-Terry-Luce)."""

    name = "logistic"

    def mu(self, z):  # noqa: D102
        return special.expit(z)

    # 1 - expit(z) == expit(-z) is computed directly: the subtraction loses every digit for
    # z >> 1 (mu_dot(50) would be 0 while mu_dot(-50) == 1.9e-22)
    def mu_dot(self, z):  # noqa: D102
        return special.expit(z) * special.expit(np.negative(z))

    def mu_ddot(self, z):  # noqa: D102
        s = special.expit(z)
        c = special.expit(np.negative(z))
        return s * c * (c - s)

    def log_partition(self, z):  # noqa: D102
        return np.logaddexp(0.0, z)

    @property
    def L_mu(self) -> float:  # noqa: D102
        return 0.25

    @property
    def R_s(self) -> float:  # noqa: D102
        return 1.0


@dataclass(frozen=True)
class LinearLink(Link):
    """mu(z) = 1/2 + slope * z on the range where it is a probability.

    Attributes:
        slope: The slope c > 0. A norm bound S is admissible only if
            c * z_bound(S) <= 1/2; :meth:`check_bound` refuses any other S.
    """

    slope: float = 1.0
    name = "linear"

    def __post_init__(self):
        check_scalar(self.slope, "slope", numbers.Real, min_val=0.0, include_boundaries="neither")

    def mu(self, z):  # noqa: D102
        return 0.5 + self.slope * np.asarray(z, dtype=float)

    def mu_dot(self, z):  # noqa: D102
        return np.full_like(np.asarray(z, dtype=float), self.slope)

    def mu_ddot(self, z):  # noqa: D102
        return np.zeros_like(np.asarray(z, dtype=float))

    def log_partition(self, z):  # noqa: D102
        z = np.asarray(z, dtype=float)
        return 0.5 * z + 0.5 * self.slope * z * z

    @property
    def L_mu(self) -> float:  # noqa: D102
        return float(self.slope)

    @property
    def R_s(self) -> float:  # noqa: D102
        return 0.0

    def check_bound(self, S: float, norm: str = "nuclear") -> float:  # noqa: D102
        zmax = z_bound(S, norm)
        if self.slope * zmax > 0.5 + 1e-12:
            raise ValueError(
                f"S == {S!r} with the linear link of slope {self.slope} lets |z| reach {zmax:.4g} "
                f"({norm} norm), where 1/2 + slope*z leaves [0, 1]; S must be <= "
                f"{0.5 / self.slope * (2.0 if norm == 'nuclear' else math.sqrt(2.0)):.6g}."
            )
        return S

    def get_config(self) -> dict:  # noqa: D102
        return {"name": self.name, "slope": self.slope}


@dataclass(frozen=True)
class ProbitLink(Link):
    """mu(z) = Phi(z / scale), the standard normal CDF (Thurstone model).

    Attributes:
        scale: Noise scale sigma > 0.
    """

    scale: float = 1.0
    name = "probit"

    def __post_init__(self):
        check_scalar(self.scale, "scale", numbers.Real, min_val=0.0, include_boundaries="neither")

    def mu(self, z):  # noqa: D102
        return special.ndtr(np.asarray(z, dtype=float) / self.scale)

    def mu_dot(self, z):  # noqa: D102
        u = np.asarray(z, dtype=float) / self.scale
        return np.exp(-0.5 * u * u) / (math.sqrt(2.0 * math.pi) * self.scale)

    def mu_ddot(self, z):  # noqa: D102
        u = np.asarray(z, dtype=float) / self.scale
        return -u / self.scale * self.mu_dot(z)

    def log_partition(self, z):  # noqa: D102
        z = np.asarray(z, dtype=float)
        u = z / self.scale
        pdf = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
        return z * special.ndtr(u) + self.scale * pdf

    @property
    def L_mu(self) -> float:  # noqa: D102
        return 1.0 / (math.sqrt(2.0 * math.pi) * self.scale)

    @property
    def R_s(self) -> float:
        """Probit is not globally self-concordant (|mu_ddot|/mu_dot = |z|/scale^2)."""
        return math.inf

    def get_config(self) -> dict:  # noqa: D102
        return {"name": self.name, "scale": self.scale}


LINKS: dict[str, type[Link]] = {
    "logistic": LogisticLink,
    "linear": LinearLink,
    "probit": ProbitLink,
}


def get_link(link: str | Link, **params) -> Link:
    """Return a link by name (or pass a Link through).

    Args:
        link: ``"logistic"``, ``"linear"`` (param ``slope``), ``"probit"`` (param ``scale``)
            or a :class:`Link` instance.
        **params: Constructor parameters.

    Returns:
        The link.

    Raises:
        ValueError: For an unknown name.
        TypeError: For another type.
    """
    if isinstance(link, Link):
        if params:
            raise TypeError("params cannot be given together with a Link instance.")
        return link
    if not isinstance(link, str):
        raise TypeError(f"link must be a str or Link, not {type(link).__name__}.")
    if link not in LINKS:
        raise ValueError(f"link == {link!r}, must be one of {tuple(LINKS)}.")
    return LINKS[link](**params)
