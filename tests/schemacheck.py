"""Holding the compiled schema (`lsq.manifest._core`) to the models.

`assert_as_the_models`: its answer for some data is the models' (refused by
both, or the same manifest). `assert_same`: two manifests' values equal
*and* of the same types: frozen models compare as their fields do, and
Python has 1 == 1.0 == True, so the compiled schema giving an int where the
models give a float would pass `==`."""

from __future__ import annotations

import copy
import math

from pydantic import ValidationError

from lsq.manifest._frozen import Frozen, freeze
from lsq.manifest._schema import Manifest


def assert_as_the_models(data: object, answer: object) -> None:
    """`answer`, the compiled schema's for `data`, is what the models say."""
    try:
        expected = Manifest.model_validate(copy.deepcopy(data))
    except ValidationError:
        assert answer is None, f"the compiled schema accepted what the models refuse: {data}"
    else:
        assert answer is not None, f"the compiled schema refused a valid manifest: {data}"
        assert_same(answer, freeze(expected))


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
