"""The README's `nameko shell` recipes, run as an operator would run them."""

import re

from servicekit.config import ROOT
from tests.faults.conftest import nameko_shell

RECIPES = re.compile(r"<!-- shell-recipes: start -->\s*```python\n(.*?)```", re.S)


def test_the_readme_shell_recipes_run(stack):
    (recipes,) = RECIPES.findall((ROOT / "README.md").read_text())
    # Each top-level statement is entered at the prompt; a blank line ends a block.
    script = re.sub(r"\n(?=\S)", "\n\n", recipes) + "\nprint('recipes done')\n"
    output = nameko_shell(stack, script)
    assert "Traceback" not in output, output
    assert "not found: No user with id 'nope'." in output
    assert "recipes done" in output, output
