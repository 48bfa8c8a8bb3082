"""A user regularizer in a dozen lines: Tsallis entropy with q = 1/3, benchmarked.

Run: python docs/examples/tsallis_third.py   (or: rlhf-gbpm bench-regularizers kl
tsallis_half docs/examples/tsallis_third.py:TsallisThird)
"""

import numpy as np

from rlhf_gbpm import SeparableRegularizer


class TsallisThird(SeparableRegularizer):
    """psi(p) = (sum_i p_i^q - 1) / (q - 1) with q = 1/3 (elementwise f; the rest is generic)."""

    name = "tsallis_third"

    def f(self, p, rho):  # noqa: D102
        return (p ** (1 / 3) - 1 / p.shape[-1]) / (1 / 3 - 1)

    def f_prime(self, p, rho):  # noqa: D102
        return (1 / 3) * p ** (-2 / 3) / (1 / 3 - 1)


if __name__ == "__main__":
    from rlhf_gbpm.experiments.regularizer_bench import BenchConfig, benchmark_regularizers

    cfg = BenchConfig(regularizers=("kl", "tsallis_half", TsallisThird()), seeds=5,
                      horizon=1000)
    report = benchmark_regularizers(cfg, out_dir="out/bench_tsallis_third")
    print(report.beta.to_string(index=False))  # noqa: T201
    print(report.to_markdown())  # noqa: T201
    print(np.round(report.table["sne_us_per_problem"].to_numpy(), 1))  # noqa: T201
