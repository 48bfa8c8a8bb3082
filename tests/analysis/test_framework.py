"""Tests for rlhf_gbpm.analysis._framework: claims, config loading, registry, study runner."""

import dataclasses
import numbers
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from rlhf_gbpm.analysis import _framework as fw
from rlhf_gbpm.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """A config with validation, like a study's."""

    steps: int = 3
    """Steps."""
    sizes: tuple[int, ...] = (1, 2)
    """Sizes."""
    pairs: tuple[tuple[float, ...], ...] = ((0.0, 1.0),)
    """Pairs."""

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps == {self.steps}, must be >= 1.")


def test_claim_coerces_fields():
    c = fw.Claim("x", "ratio > 0.9", np.float64(0.912345678), np.bool_(True))
    assert c.observed == "0.9123" and c.holds is True and isinstance(c.holds, bool)
    c = fw.Claim("y", "e", np.array([0.5, 0.25]), 0)
    assert c.observed == "[0.5 , 0.25]" and c.holds is False


def test_claims_table_formats():
    claims = [fw.Claim("a", "x > 1", "2", True), fw.Claim("b", "y < 0", "1", False)]
    md = fw.claims_table(claims)
    assert md.splitlines()[0] == "| claim | expected | observed | holds |"
    assert "| a | x > 1 | 2 | yes |" in md and "| b | y < 0 | 1 | NO |" in md
    piped = fw.claims_table([fw.Claim("n", "||w|| < 1", "|x|", True)])
    assert "| n | \\|\\|w\\|\\| < 1 | \\|x\\| | yes |" in piped
    csv_text = fw.claims_table(claims, "csv")
    assert csv_text.splitlines()[1] == "a,x > 1,2,True"
    with pytest.raises(ValueError, match="fmt == 'html', must be 'markdown' or 'csv'."):
        fw.claims_table(claims, "html")


def test_load_config_sources(tmp_path):
    assert fw.load_config(ToyConfig) == ToyConfig()
    cfg = ToyConfig(steps=5)
    assert fw.load_config(ToyConfig, cfg) is cfg
    got = fw.load_config(ToyConfig, {"steps": 7, "sizes": [4, 5], "pairs": [[1.0, 2.0]]})
    assert got == ToyConfig(steps=7, sizes=(4, 5), pairs=((1.0, 2.0),))
    top = tmp_path / "top.toml"
    top.write_text("steps = 9\nsizes = [3]\n")
    assert fw.load_config(ToyConfig, top) == ToyConfig(steps=9, sizes=(3,))
    table = tmp_path / "table.toml"
    table.write_text("[config]\nsteps = 2\n")
    assert fw.load_config(ToyConfig, str(table)) == ToyConfig(steps=2)


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'stpes' for ToyConfig; valid"):
        fw.load_config(ToyConfig, {"stpes": 1})
    with pytest.raises(ConfigError, match="invalid ToyConfig: steps == 0, must be >= 1."):
        fw.load_config(ToyConfig, {"steps": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        fw.load_config(ToyConfig, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        fw.load_config(ToyConfig, bad)
    with pytest.raises(ConfigError, match="config must be None, a dict or a TOML path, got int"):
        fw.load_config(ToyConfig, 3)


def test_registry_lists_the_nine_studies():
    names = fw.list_studies()
    assert len(names) == 9 and len(set(names)) == 9
    assert {"sam_diagonal", "incremental_adam", "continual_classification"} <= set(names)
    assert all(fw.STUDIES[n] == f"rlhf_gbpm.analysis.{n}" for n in names)
    with pytest.raises(ValueError, match="study == 'nope', must be one of"):
        fw.get_study("nope")
    mod = fw.get_study("continual_classification")
    for attr in ("NAME", "DESCRIPTION", "REFERENCE", "Config", "run", "plot", "claims"):
        assert hasattr(mod, attr)
    assert mod.NAME == "continual_classification"


def test_geometric_steps():
    s = fw.geometric_steps(1000, 20)
    assert s[0] == 1 and s[-1] == 1000 and np.all(np.diff(s) > 0)
    assert s.dtype == np.int64 and 10 <= len(s) <= 22
    ratios = s[1:] / s[:-1]
    assert ratios[-5:].max() < 1.6  # geometric spacing once integer rounding stops mattering
    np.testing.assert_array_equal(fw.geometric_steps(5, 50, start=0), [0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="total == 3, must be >= start == 5."):
        fw.geometric_steps(3, start=5)


def test_fit_loglog_slope():
    x = np.geomspace(1, 1e4, 30)
    assert fw.fit_loglog_slope(x, 3 * x**-2) == pytest.approx(-2.0)
    assert np.isnan(fw.fit_loglog_slope(x, -x))  # no positive ordinate
    assert np.isnan(fw.fit_loglog_slope([1, 2, 3], [1, 0, np.inf]))  # one usable point


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with fw.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num == 0, must be >= 1."):
        with fw.torch_threads(0):
            pass


def test_run_study_writes_figures_and_tables(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mod = types.ModuleType("toy_study")
    mod.Config = ToyConfig
    mod.run = lambda cfg: {"steps": cfg.steps}
    mod.claims = lambda res: [fw.Claim("steps_positive", "steps > 0", res["steps"],
                                       res["steps"] > 0)]

    def plot(res):
        fig, ax = plt.subplots()
        ax.plot([0, res["steps"]])
        return {"headline": fig}

    mod.plot = plot
    monkeypatch.setitem(sys.modules, "toy_study", mod)
    monkeypatch.setitem(fw.STUDIES, "toy", "toy_study")
    out = fw.run_study("toy", {"steps": 4}, tmp_path)
    assert out.all_hold and out.config == ToyConfig(steps=4)
    names = sorted(p.name for p in out.files)
    assert names == ["toy_claims.csv", "toy_claims.md", "toy_headline.pdf", "toy_headline.png"]
    assert "| steps_positive | steps > 0 | 4 | yes |" in (tmp_path / "toy_claims.md").read_text()
    assert fw.run_study("toy", None).files == []  # nothing written without out_dir


def test_cli_lists_studies():
    proc = subprocess.run([sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "--list"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.split() == fw.list_studies()


def test_check_finite_fields_names_the_field():
    fw.check_finite_fields(ToyConfig())
    with pytest.raises(ValueError, match=r"pairs == \(\(0.0, inf\),\), must be finite."):
        fw.check_finite_fields(ToyConfig(pairs=((0.0, np.inf),)))
    with pytest.raises(ValueError, match="pairs == .*nan.*, must be finite."):
        fw.check_finite_fields(ToyConfig(pairs=((float("nan"), 1.0),)), allow_inf=("pairs",))
    fw.check_finite_fields(ToyConfig(pairs=((0.0, -np.inf),)), allow_inf=("pairs",))


def _real_fields(name):
    module = fw.get_study(name)
    for f in dataclasses.fields(module.Config):
        if isinstance(f.default, float):
            yield module, f.name


@pytest.mark.parametrize(
    ("module", "field"),
    [pair for name in fw.list_studies() for pair in _real_fields(name)],
    ids=lambda v: v if isinstance(v, str) else v.NAME,
)
def test_study_configs_reject_infinite_reals(module, field):
    """An infinite step size or scale fails at construction, not as NaN trajectories later."""
    if (module.NAME, field) == ("sam_diagonal", "stop_norm"):
        # inf means "never stop early" there
        assert module.Config(stop_norm=np.inf).stop_norm == np.inf
        return
    with pytest.raises(ValueError) as info:
        module.Config(**{field: np.inf})
    # the finiteness check names the field; a cross-field check that fires first shows the inf
    assert f"{field} == inf, must be finite." in str(info.value) or (
        "inf" in str(info.value) or f"/{field} == 0.0" in str(info.value))


def test_cli_unknown_study_is_a_clear_error():
    proc = subprocess.run([sys.executable, "-m", "rlhf_gbpm.experiments.cli", "study", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "study == 'nope', must be one of ('sam_diagonal'," in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_exit_status_follows_the_claims(tmp_path, monkeypatch, capsys):
    from rlhf_gbpm.experiments import cli

    mod = types.ModuleType("toy_claims_study")
    mod.Config = ToyConfig
    mod.run = lambda cfg: cfg.steps
    mod.claims = lambda res: [fw.Claim("steps_above_3", "steps > 3", res, res > 3)]
    mod.plot = lambda res: {}
    monkeypatch.setitem(sys.modules, "toy_claims_study", mod)
    monkeypatch.setitem(fw.STUDIES, "toy", "toy_claims_study")
    for steps, status, cell in ((4, 0, "yes"), (3, 1, "NO")):
        toml = tmp_path / f"steps{steps}.toml"
        toml.write_text(f"steps = {steps}\n")
        argv = ["study", "toy", "--config", str(toml), "--out", str(tmp_path / "out")]
        assert cli.main(argv) == status
        assert f"| steps_above_3 | steps > 3 | {steps} | {cell} |" in capsys.readouterr().out


def test_check_tuple():
    assert fw.check_tuple([1, 2], "ds", numbers.Integral, min_val=1) == (1, 2)
    with pytest.raises(TypeError, match=r"ds must be a non-empty tuple, got \(\)."):
        fw.check_tuple((), "ds", numbers.Integral)
    with pytest.raises(TypeError, match="ds must be an instance of Integral"):
        fw.check_tuple((1, 2.5), "ds", numbers.Integral)
    with pytest.raises(ValueError, match=r"lrs == 0.0, must be > 0.0."):
        fw.check_tuple((0.1, 0.0), "lrs", numbers.Real, min_val=0.0,
                       include_boundaries="neither")


def test_run_study_restores_matplotlib_style(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = {}

    def plot(res):
        matplotlib.rcParams["axes.grid"] = not before  # a study's theme, e.g. sns.set_theme
        fig, ax = plt.subplots()
        seen["grid_while_plotting"] = matplotlib.rcParams["axes.grid"]
        return {"headline": fig}

    mod = types.ModuleType("toy_style_study")
    mod.Config = ToyConfig
    mod.run = lambda cfg: None
    mod.claims = lambda res: []
    mod.plot = plot
    monkeypatch.setitem(sys.modules, "toy_style_study", mod)
    monkeypatch.setitem(fw.STUDIES, "toy", "toy_style_study")
    before = bool(matplotlib.rcParams["axes.grid"])
    fw.run_study("toy", None, tmp_path)
    assert seen["grid_while_plotting"] is (not before)
    assert matplotlib.rcParams["axes.grid"] is before


def test_study_config_defaults_and_type_error():
    assert fw.study_config(None, ToyConfig) == ToyConfig()
    cfg = ToyConfig(steps=5)
    assert fw.study_config(cfg, ToyConfig) is cfg
    with pytest.raises(TypeError, match="config must be None or a .*ToyConfig, not dict; build"):
        fw.study_config({"steps": 5}, ToyConfig)


@pytest.mark.parametrize("name", fw.list_studies())
def test_study_run_rejects_a_dict_config(name):
    """run() checks its argument first (a dict is for load_config), before any work."""
    module = fw.get_study(name)
    with pytest.raises(TypeError, match=rf"config must be None or a {module.__name__}\.Config"):
        module.run({"seed": 1})


def test_package_reexports_the_framework():
    import rlhf_gbpm.analysis as analysis

    assert sorted(analysis.__all__) == sorted(fw.__all__)
    assert all(getattr(analysis, n) is getattr(fw, n) for n in fw.__all__)
