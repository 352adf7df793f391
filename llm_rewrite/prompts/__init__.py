"""Prompt templates, rendered strictly.

Templates are the `*.md` files next to this module. A placeholder is
`{{name}}`; rendering fails if a placeholder has no value or a value has no
placeholder (a typo in either would otherwise silently drop context from the
prompt). Values are inserted once, verbatim: MLIR braces or a `{{...}}` inside
a value are not expanded again.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}")
_DIR = Path(__file__).resolve().parent


class PromptError(KeyError):
    pass


@cache
def template(name: str) -> str:
    path = _DIR / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"no prompt template '{name}' in {_DIR}")
    return path.read_text(encoding="utf-8")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render_text(text: str, values: dict[str, object], name: str = "<template>") -> str:
    wanted = placeholders(text)
    missing = sorted(wanted - set(values))
    if missing:
        raise PromptError(f"prompt '{name}': no value for placeholder(s) {', '.join(missing)}")
    unused = sorted(set(values) - wanted)
    if unused:
        raise PromptError(f"prompt '{name}': value(s) {', '.join(unused)} have no placeholder")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def render(name: str, **values: object) -> str:
    return render_text(template(name), values, name)
