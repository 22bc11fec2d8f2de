"""Releases: a new version of a service beside the old, traffic moved by
gateway weights (blue-green or canary with analysis), rollback, and history
(see docs/deploy.md)."""

from lsq.deploy._analysis import Figures, Verdict, figures, judge
from lsq.deploy._api import mount
from lsq.deploy._controller import Abort, Release, ReleaseController
from lsq.deploy._history import ReleaseStore
from lsq.deploy._version import Identity, checkout, entry_hash, identify

__all__ = [
    "Abort",
    "Figures",
    "Identity",
    "Release",
    "ReleaseController",
    "ReleaseStore",
    "Verdict",
    "checkout",
    "entry_hash",
    "figures",
    "identify",
    "judge",
    "mount",
]
