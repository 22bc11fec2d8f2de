"""`assert_same`: two manifests' values equal *and* of the same types.

Frozen models compare as their fields do, and Python has 1 == 1.0 == True:
the compiled schema giving an int where the models give a float would pass
`==`, so the tests that hold the two together compare through this."""

from __future__ import annotations

import math

from lsq.manifest._frozen import Frozen


def assert_same(got: object, expected: object, where: str = "manifest") -> None:
    assert type(got) is type(expected), f"{where}: {got!r} is not {expected!r}"
    if isinstance(expected, Frozen):
        for name in expected.fields:
            assert_same(getattr(got, name), getattr(expected, name), f"{where}.{name}")
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), f"{where}: keys differ"
        for key, value in expected.items():
            assert_same(got[key], value, f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got), where
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"
