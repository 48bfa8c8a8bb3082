"""Tests for rlhf_gbpm/experiments/__init__.py: lazy public names."""

import subprocess
import sys

import pytest

import rlhf_gbpm.experiments as ex


def test_public_names_resolve_to_their_modules():
    from rlhf_gbpm.experiments import config, runner, store

    assert ex.load_config is config.load_config
    assert ex.run_sweep is runner.run_sweep
    assert ex.load_results is store.load_results
    assert set(dir(ex)) == set(ex.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        ex.nope  # noqa: B018


def test_import_is_lazy():
    code = ("import sys, rlhf_gbpm.experiments, rlhf_gbpm.experiments.cli; "
            "print('pandas' in sys.modules, 'seaborn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
