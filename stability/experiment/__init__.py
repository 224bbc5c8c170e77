"""Experiments: a YAML spec expanded into a grid of runs, estimated, budgeted, run concurrently and resumed."""

from stability.experiment.estimate import Estimate, estimate
from stability.experiment.runner import ExperimentResult, run_experiment
from stability.experiment.spec import ExperimentSpec, expand, load_spec

__all__ = ["Estimate", "ExperimentResult", "ExperimentSpec", "estimate", "expand", "load_spec", "run_experiment"]
