"""Comparing the trees of the two YAML composers (lsq.manifest._yaml)."""

from __future__ import annotations


def same_tree(a: object, b: object) -> bool:
    """Equal trees, but for where an empty plain value is: the C composer
    puts it right after its key, the pure one at the next token."""
    from lsq.manifest._yaml import Node

    if not (isinstance(a, Node) and isinstance(b, Node)):
        return a == b
    if type(a.value) is not type(b.value) or (a.text, a.style, a.key_mark) != (b.text, b.style, b.key_mark):
        return False
    empty = a.text == "" and a.style is None and not isinstance(a.value, (dict, list))
    if not empty and (a.mark, a.end) != (b.mark, b.end):
        return False
    if isinstance(a.value, dict):
        return a.value.keys() == b.value.keys() and all(same_tree(a.value[k], b.value[k]) for k in a.value)  # type: ignore[union-attr]
    if isinstance(a.value, list):
        return len(a.value) == len(b.value) and all(same_tree(x, y) for x, y in zip(a.value, b.value))  # type: ignore[arg-type]
    return a.value == b.value
