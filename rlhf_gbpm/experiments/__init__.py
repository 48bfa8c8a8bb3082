"""Experiment machinery: configs, sweeps, runner, results store, plots and the CLI."""
