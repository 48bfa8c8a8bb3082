"""Exceptions and warnings raised by rlhf_gbpm, all in one place."""

from __future__ import annotations

__all__ = [
    "GBPMError",
    "GBPMWarning",
    "ConvergenceWarning",
    "DependencyNotInstalled",
    "NotStronglyConvexError",
    "RegularizerError",
    "ConfigError",
    "ResultsCorruptedError",
]


class GBPMError(Exception):
    """Base class of every error raised on purpose by rlhf_gbpm."""


class DependencyNotInstalled(GBPMError, ImportError):
    """An optional dependency is missing; the message gives the pip command."""


class RegularizerError(GBPMError, ValueError):
    """A regularizer raised, returned NaN, or is not convex where it was evaluated."""


class NotStronglyConvexError(RegularizerError):
    """A regularizer failed the numerical strong-convexity check on the simplex."""


class ConfigError(GBPMError, ValueError):
    """An experiment or study configuration is invalid; the message names the key."""


class ResultsCorruptedError(GBPMError, ValueError):
    """A results file is truncated or fails its checksum."""


class GBPMWarning(UserWarning):
    """A user-facing problem that does not stop the computation."""


class ConvergenceWarning(GBPMWarning):
    """An iterative solver stopped before reaching its tolerance."""


def missing_dependency(package: str, extra: str) -> DependencyNotInstalled:
    """Build the error for a missing optional dependency.

    Args:
        package: The import name that failed, e.g. ``"ray"``.
        extra: The rlhf-gbpm extra that installs it, e.g. ``"ray"``.

    Returns:
        An exception to raise ``from`` the original ``ImportError``.
    """
    return DependencyNotInstalled(
        f"{package} is not installed; install it with: pip install \"rlhf-gbpm[{extra}]\""
    )
