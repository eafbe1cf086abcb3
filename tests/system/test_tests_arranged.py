"""The tests stay where a newcomer looks for them: each under the app it tests
(tests/<app>/test_*.py), sharing helpers only through tests/factories.py (how data is built),
tests/conftest.py (fixtures) and tests/support/ (fakes of outside services, process harnesses),
never by importing another test module."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
APPS = {
    "api",
    "billing",
    "commissions",
    "core",
    "customers",
    "demo",
    "resellers",
    "subscriptions",
    "system",
    "webhooks",
    "insights",
}


def modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_every_test_module_is_under_an_app():
    misplaced = [
        str(path.relative_to(TESTS))
        for path in modules()
        if path.parent.name not in APPS or path.parent.parent != TESTS
    ]
    assert not misplaced, f"move these under tests/<app>/: {misplaced}"


def test_no_test_module_imports_another():
    imports = []
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            imports += [
                (str(path.relative_to(TESTS)), name)
                for name in names
                if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
            ]
    assert not imports, f"share through factories, conftest or support instead: {imports}"
