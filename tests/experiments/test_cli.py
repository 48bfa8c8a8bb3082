"""Subprocess smoke tests of the rlhf-gbpm CLI, and kill-and-resume of a sweep."""

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from _experiment_fakes import FAKE_CONFIG

from rlhf_gbpm.experiments.cli import build_parser, main
from rlhf_gbpm.experiments.config import load_config
from rlhf_gbpm.experiments.runner import run_sweep
from rlhf_gbpm.experiments.store import load_results

FAKES_DIR = str(Path(__file__).resolve().parent)

TINY = """
name = "tiny"
horizon = 60
eta = [0.01, 1000.0]
seeds = [0, 1]
checkpoints = { every = 10 }

[env]
id = "rlhf_gbpm/GBPMDuel-v0"
params = { rank = 1 }

[[sizes]]
d = 4
K = 6
S = 3.0

[[agents]]
name = "greedy_sampling"
label = "GS"
kwargs = { estimator = "ons", refresh = 2, S = "${S}" }

[[agents]]
name = "uniform"
"""


def _toml(data: dict) -> str:
    """A tiny TOML writer for the fake config (tables of scalars and lists)."""
    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list))
             or (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
    for key in ("env", "checkpoints", "backend"):
        if key in data:
            lines.append(f"{key} = {value(data[key])}")
    for key in ("sizes", "agents", "regularizers"):
        for item in data.get(key, []):
            lines.append(f"[[{key}]]")
            lines += [f"{k} = {value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _cli(*args, timeout=240, **kwargs):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([FAKES_DIR, env.get("PYTHONPATH", "")])
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, "-m", "rlhf_gbpm.experiments.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


def test_toml_writer_round_trips():
    assert load_config(tomllib.loads(_toml(FAKE_CONFIG))) == load_config(FAKE_CONFIG)


def test_run_and_plot_smoke(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "res"
    proc = _cli("run", str(config), "--out", str(out), "--backend", "inprocess",
                "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "| GS | kl |" in proc.stdout and "| uniform | kl |" in proc.stdout
    table = load_results(out)
    assert len(table) == 2 * 2 * 2 * 6 and set(table["agent"]) == {"GS", "uniform"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished_at"] and manifest["seeds"] == [0, 1]
    assert manifest["config"]["agents"][0]["kwargs"]["S"] == "${S}"
    assert not (out / "figures").exists()
    # plot renders the report from the stored table, elsewhere (run without --no-plots
    # calls the same report writer)
    proc = _cli("plot", str(out), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr
    for name in ("regret_curves", "final_regret_vs_eta", "fit_r2_vs_eta", "estimation_error"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "again" / "figures" / f"{name}.{ext}").stat().st_size > 1000
    assert (tmp_path / "again" / "summary.md").read_text() == (out / "summary.md").read_text()


def test_list_smoke():
    proc = _cli("list")
    assert proc.returncode == 0, proc.stderr
    for word in ("rlhf_gbpm/GBPMDuel-v0", "greedy_sampling", "kl", "authors_gs", "default",
                 "etc_vs_gs", "sam_diagonal"):
        assert word in proc.stdout


@pytest.mark.parametrize("command", ["run", "plot", "list", "study"])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: rlhf-gbpm {command}" in capsys.readouterr().out


def test_study_keeps_its_options():
    args = build_parser().parse_args(["study", "sam_diagonal", "--config", "x.toml", "--out",
                                      "o"])
    assert (args.name, str(args.config), str(args.out)) == ("sam_diagonal", "x.toml", "o")
    assert build_parser().parse_args(["study", "--list"]).list


def test_bad_config_fails_before_work_with_the_key(tmp_path, capsys):
    data = copy.deepcopy(FAKE_CONFIG)
    data["agents"][1]["eta"] = [-1.0]
    path = tmp_path / "bad.toml"
    path.write_text(_toml(data))
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "agents[1].eta[0]: must be > 0, got -1.0." in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _finished_parts(out: Path) -> int:
    index = out / "index.jsonl"
    return index.read_bytes().count(b"\n") if index.exists() else 0


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_kill_and_resume_gives_the_uninterrupted_table(tmp_path):
    """Interrupt a sweep twice (SIGKILL, then Ctrl-C); resuming ends with the same table."""
    reference = run_sweep(load_config(FAKE_CONFIG), tmp_path / "ref", progress=False).table
    slow = copy.deepcopy(FAKE_CONFIG)
    for agent in slow["agents"]:
        agent.setdefault("kwargs", {})["delay"] = 0.004  # ~0.2 s per chunk
    slow["backend"] = {"chunk_size": 1, "name": "inprocess"}  # 18 chunks
    config = tmp_path / "slow.toml"
    config.write_text(_toml(slow))
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([FAKES_DIR,
                                                       os.environ.get("PYTHONPATH", "")]))
    rng = random.Random(11)  # kill moments: after a few chunks, then at a random phase
    for i, (kill_after, sig) in enumerate(((rng.randint(1, 4), signal.SIGKILL),
                                           (rng.randint(6, 9), signal.SIGINT))):
        args = ["run", str(config), "--out", str(out), "--no-plots", "--no-progress"]
        if i:
            args.append("--resume")
        else:  # first on the process pool: its workers must not outlive a killed sweep
            args += ["--backend", "process", "--workers", "2"]
        # the child gets Ctrl-C's default disposition even when this test runs in a background
        # job (which starts with SIGINT ignored, and Python then leaves it ignored)
        proc = subprocess.Popen([sys.executable, "-m", "rlhf_gbpm.experiments.cli", *args],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=_default_sigint)
        deadline = time.monotonic() + 120
        while _finished_parts(out) < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, "sweep made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.15))  # land anywhere inside the next chunk or write
        workers = _children(proc.pid)
        proc.send_signal(sig)  # a kill, then Ctrl-C
        proc.wait(timeout=60)
        err = proc.stderr.read().decode()
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL, err
            assert len(workers) >= 2  # two pool workers (and the resource tracker)
            deadline = time.monotonic() + 30
            while any(_alive(w) for w in workers):
                assert time.monotonic() < deadline, "pool workers outlived the sweep"
                time.sleep(0.1)
        else:
            assert proc.returncode == 130, err
            assert f"Continue with: rlhf-gbpm run --resume --out {out}" in err
        assert kill_after <= _finished_parts(out) < 18
    done_before = _finished_parts(out)
    proc = _cli("run", "--out", str(out), "--resume", "--no-plots", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"skipped {done_before} finished" in proc.stdout
    pd.testing.assert_frame_equal(load_results(out), reference, check_exact=True)


def test_resume_without_results_refuses_instead_of_starting_the_default(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rlhf_gbpm.experiments.cli", "run", "--resume",
                           "--out", str(tmp_path / "typo")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "holds no results to resume" in proc.stderr
    assert not (tmp_path / "typo").exists()
