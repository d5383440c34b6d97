"""The broker worker's import graph: what `celery -A secrets_broker.celery_app worker` loads.

Checked in a fresh interpreter, so no module imported by another test can hide or fake an import.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys

# The worker entry (the app and its `include`), and what its start signal imports.
WORKER_MODULES = ("secrets_broker.celery_app", "secrets_broker.jobs", "secrets_broker.revocation.sweeper")


def _modules_loaded_by(*names: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(names)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "MSP_ENV": "dev"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout))


def _imports_anywhere_in(module: str) -> set[str]:
    """Every module an `import` of `module` names, at the top or in a function (not for type checks only)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    names: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                return  # never runs
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            names.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)

    with open(spec.origin, encoding="utf-8") as source:
        Imports().visit(ast.parse(source.read()))
    return names


def test_the_worker_loads_no_request_dependencies_routes_or_api_clients() -> None:
    loaded = _modules_loaded_by(*WORKER_MODULES)

    assert set(WORKER_MODULES) <= loaded
    # The request layer: dependency providers, the app, its routes.
    assert "secrets_broker.deps" not in loaded
    assert "secrets_broker.main" not in loaded
    assert not {m for m in loaded if m.startswith("secrets_broker.") and m.endswith(".routes")}
    # The intake client is the API's (the worker learns of intake's changes from its events).
    assert "secrets_broker.intake_client" not in loaded
    # Celery tasks live in one module per service, named jobs.py.
    assert "secrets_broker.revocation.tasks" not in loaded


def test_no_worker_module_imports_the_request_layer_even_lazily() -> None:
    # A function-level import (say, in the worker's start signal) would escape the check above. The
    # callers' authentication (the kit's FastAPI dependencies) is checked here rather than in
    # sys.modules, since the kit's own settings module loads it.
    broker_modules = sorted(m for m in _modules_loaded_by(*WORKER_MODULES) if m.startswith("secrets_broker"))
    for module in broker_modules:
        imported = _imports_anywhere_in(module)
        assert not imported & {"secrets_broker.deps", "secrets_broker.main", "mspkit.auth"}, module


def test_the_api_registers_no_celery_tasks() -> None:
    loaded = _modules_loaded_by("secrets_broker.main")

    assert "secrets_broker.jobs" not in loaded
