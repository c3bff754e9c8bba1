"""The kit knows no service: nothing in servicekit/ (its tests included)
imports a service, the gateway, the news package, the operator tools or the
end-to-end tests, nor names a service in its code. Each service imports the
kit, never the reverse, so the kit can serve a service yet to be written."""

import ast
import re
from pathlib import Path

import pytest

from tools import SERVICE_NAMES

KIT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {*SERVICE_NAMES, "gateway", "news", "tools", "bench", "tests"}
# The kit's tests may use what tests and operators use around any service:
# the test fixtures (a vhost, the test config, a free port) and the tools
# (create a scratch database, the list of services to check against).
ALLOWED_IN_TESTS = {"tests.support", "tools", "tools.migrations"}


def kit_modules():
    return sorted(path for path in KIT.rglob("*.py") if "__pycache__" not in path.parts)


def imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                yield body[0].value


def names_of_services(tree):
    """Code that names a service: a string, a name or an attribute (prose in
    docstrings and comments may use one as an example)."""
    prose = set(map(id, docstrings(tree)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            # "users", "users.service", "users:Base", "rpc-users"; not prose
            # ("old processed events") of a message
            text = node.value.strip()
            if " " not in text and set(re.split(r"[.:/-]", text)) & set(SERVICE_NAMES):
                yield text
        elif isinstance(node, ast.Name) and node.id in SERVICE_NAMES:
            yield node.id
        elif isinstance(node, ast.Attribute) and node.attr in SERVICE_NAMES:
            yield node.attr


@pytest.mark.parametrize("path", kit_modules(), ids=lambda path: str(path.relative_to(KIT)))
def test_the_kit_imports_and_names_no_service(path):
    tree = ast.parse(path.read_text())
    allowed = ALLOWED_IN_TESTS if "tests" in path.relative_to(KIT).parts else set()
    project = [
        module for module in imported(tree)
        if module.split(".")[0] in PROJECT_PACKAGES and module not in allowed
    ]  # fmt: skip
    assert project == [], f"{path.name} imports the project's {project}"
    assert list(names_of_services(tree)) == [], f"{path.name} names a service"
