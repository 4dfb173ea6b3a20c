"""A griffe extension for the API reference: Sphinx roles in docstrings as inline code.

eventsock's docstrings are Google style, but name other objects the Sphinx way
(``:class:`~eventsock.Server```, ``:meth:`shutdown```), which Markdown would show as is.
This turns each role into inline code, as Sphinx would print it: ``~`` keeps the last
part of the name only, and methods and functions get ``()``. mkdocs.yml loads it
through mkdocstrings' ``extensions`` option; it changes the rendered reference only.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|mod|exc|data|obj|const):`(~?)([^`]+)`")


def _as_code(match: re.Match[str]) -> str:
    role, short, name = match.groups()
    name = name.strip()
    if short:
        name = name.rsplit(".", 1)[-1]
    if role in ("meth", "func") and not name.endswith(")"):
        name += "()"
    return f"`{name}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_as_code, obj.docstring.value)
