"""Distillation methods by name (data, not code: a new method is one line here)."""

from __future__ import annotations

from importlib import import_module

from ..errors import InputError

__all__ = ["METHODS", "BASELINES", "EVALUATION_METHODS", "method_class"]

#: Method name → "module:Class" in :mod:`distillbt.distill`. Names are what ``--method`` accepts.
METHODS = {
    "gradient": "gradient:GradientMatching",
    "distribution": "distribution:DistributionMatching",
    "trajectory": "trajectory:TrajectoryMatching",
    "cafe": "cafe:CAFE",
    "kernel": "kernel:KernelRidgeDistiller",
    "exact-linear": "kernel:ExactLinear",
    "class-moments": "moments:ClassMoments",
    "kmedoids": "coresets:KMedoids",
    "centroids": "centroids:KMeansCentroids",
    "herding": "coresets:Herding",
    "random": "coresets:RandomSubset",
    "full": "coresets:FullData",
}
#: The baselines every comparison runs beside the distillers.
BASELINES = ("kmedoids", "herding", "random", "full")
#: What ``evaluate`` compares by default.
EVALUATION_METHODS = ("gradient", "distribution", "kernel", *BASELINES)


def method_class(name: str):
    """The distiller class behind a method name (imported on first use)."""
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(import_module(f"{__package__}.{module}"), cls)
