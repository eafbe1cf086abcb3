"""docker-compose.yml, the Dockerfile and .env.example point at things that exist in the code.

There is no Docker engine here, so the files are parsed and every command is resolved the way
the container would resolve it: gunicorn's `module:attr`, celery's `-A`, `manage.py` commands.
"""

import ast
import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SETTINGS = "config.settings.production"
# The settings modules production loads (production.py star-imports base.py).
PRODUCTION_SETTINGS_FILES = [
    ROOT / "config" / "settings" / "base.py",
    ROOT / "config" / "settings" / "production.py",
]

# django-environ methods that read a variable, and the position of `default` among their
# positional arguments (`env(var, cast, default)`, `env.list(var, cast, default)`, ...).
_ENV_DEFAULT_POSITION = {"__call__": 2, "get_value": 2, "list": 2, "tuple": 2, "dict": 2}
_ENV_READERS = {
    "__call__",
    "get_value",
    "str",
    "bool",
    "int",
    "float",
    "bytes",
    "list",
    "tuple",
    "dict",
    "json",
    "url",
    "path",
    "db",
    "db_url",
    "cache",
    "cache_url",
    "email",
    "email_url",
    "search_url",
    "channels",
    "channels_url",
}
_ENV_EXAMPLE_LINE = re.compile(r"^\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
# ${NAME}, ${NAME:-default}, ${NAME:?error}; "$${NAME}" is an escaped dollar, not interpolation.
_COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])[^}]*)?\}")


# --- helpers ------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _django_services() -> dict[str, dict[str, Any]]:
    """Services that run the project's image (built from the Dockerfile)."""
    services = _services()
    project_images = {s["image"] for s in services.values() if "build" in s and "image" in s}
    return {
        name: service
        for name, service in services.items()
        if "build" in service or service.get("image") in project_images
    }


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _env_files(service: dict[str, Any]) -> list[str]:
    value = service.get("env_file") or []
    items = [value] if isinstance(value, str | dict) else value
    return [item["path"] if isinstance(item, dict) else item for item in items]


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _celery_subcommand(argv: list[str]) -> str | None:
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-A", "--app", "-b", "--broker", "--result-backend", "--workdir", "--config"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _check_command(argv: list[str]) -> None:
    """Fail unless the command runs something that exists in this project."""
    program = Path(argv[0]).name
    if program == "gunicorn":
        targets = [arg for arg in argv[1:] if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", arg)]
        assert len(targets) == 1, f"gunicorn needs one module:attribute, got {argv}"
        module_name, attribute = targets[0].split(":")
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        assert callable(target), f"{targets[0]} is not a WSGI callable"
    elif program == "celery":
        app_name = _option(argv, "-A", "--app")
        assert app_name, f"celery without -A: {argv}"
        app = find_app(app_name)
        assert isinstance(app, Celery), f"-A {app_name} is not a Celery app"
        assert _celery_subcommand(argv) in ("worker", "beat"), argv
    elif re.fullmatch(r"python(3(\.\d+)?)?", program):
        assert argv[1:2] == ["manage.py"], f"unexpected python command {argv}"
        assert (ROOT / "manage.py").is_file()
        assert len(argv) > 2 and argv[2] in get_commands(), f"no management command {argv[2:3]}"
    else:
        pytest.fail(f"unknown program in {argv}: teach tests/system/test_compose.py to resolve it")


def _env_reads(path: Path) -> dict[str, bool]:
    """Every variable a settings file reads through `env`, mapped to whether it is required:
    read without a default and not under a condition (`x if USE_S3 else y`)."""
    reads: dict[str, bool] = {}

    def record(call: ast.Call, conditional: bool) -> None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "env":
            method = "__call__"
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        ):
            method = func.attr
        else:
            return
        if method not in _ENV_READERS:
            return
        name_node = (
            call.args[0]
            if call.args
            else next((k.value for k in call.keywords if k.arg == "var"), None)
        )
        assert isinstance(name_node, ast.Constant) and isinstance(name_node.value, str), (
            f"{path.name}:{call.lineno}: cannot tell which variable env.{method}() reads"
        )
        has_default = any(k.arg == "default" for k in call.keywords) or len(call.args) > (
            _ENV_DEFAULT_POSITION.get(method, 1)
        )
        required = not has_default and not conditional
        reads[name_node.value] = reads.get(name_node.value, False) or required

    def visit(node: ast.AST, conditional: bool) -> None:
        if isinstance(node, ast.IfExp):
            visit(node.test, conditional)
            visit(node.body, True)
            visit(node.orelse, True)
            return
        if isinstance(node, ast.If):
            visit(node.test, conditional)
            for statement in [*node.body, *node.orelse]:
                visit(statement, True)
            return
        if isinstance(node, ast.Call):
            record(node, conditional)
        for child in ast.iter_child_nodes(node):
            visit(child, conditional)

    visit(ast.parse(path.read_text()), False)
    return reads


def _production_env_reads() -> dict[str, bool]:
    reads: dict[str, bool] = {}
    for path in PRODUCTION_SETTINGS_FILES:
        for name, required in _env_reads(path).items():
            reads[name] = reads.get(name, False) or required
    return reads


def _env_example() -> tuple[dict[str, str], set[str]]:
    """(variables set in .env.example with their values, variables only shown commented out)."""
    assigned: dict[str, str] = {}
    commented: set[str] = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = _ENV_EXAMPLE_LINE.match(line)
        if match is None:
            continue
        if match.group(1):
            commented.add(match.group(2))
        else:
            assigned[match.group(2)] = match.group(3).strip()
    return assigned, commented


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_defines_the_five_services() -> None:
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(_services())


def test_web_worker_and_beat_run_the_project_image() -> None:
    assert {"web", "worker", "beat"} <= set(_django_services())
    build = _services()["web"]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).is_file()


@pytest.mark.parametrize("name", sorted(_django_services()))
def test_django_service_uses_production_settings_and_the_env_file(name: str) -> None:
    service = _django_services()[name]
    module = _environment(service).get("DJANGO_SETTINGS_MODULE")
    assert module == PRODUCTION_SETTINGS, f"{name}: DJANGO_SETTINGS_MODULE is {module!r}"
    # Found, not imported: production settings raise without their secrets, as they should.
    assert importlib.util.find_spec(module) is not None
    assert ".env" in _env_files(service), f"{name} does not read .env"


@pytest.mark.parametrize("name", sorted(_django_services()))
def test_django_service_command_points_at_real_code(name: str) -> None:
    command = _django_services()[name].get("command")
    assert command, f"{name} has no command"
    _check_command(_argv(command))


def test_worker_and_beat_run_the_projects_celery_app() -> None:
    import config

    for name, subcommand in (("worker", "worker"), ("beat", "beat")):
        argv = _argv(_services()[name]["command"])
        assert Path(argv[0]).name == "celery", f"{name} does not run celery: {argv}"
        assert _celery_subcommand(argv) == subcommand, f"{name} runs {argv}"
        app_name = _option(argv, "-A", "--app")
        assert app_name is not None
        assert find_app(app_name) is config.celery_app, f"{name}: -A {app_name} is another app"


def test_celery_app_registers_the_projects_tasks_and_beat_names_only_those(db: None) -> None:
    # Importing the task modules runs Celery's Django fix-up, which may touch the database.
    from config import celery_app

    celery_app.loader.import_default_modules()
    project_tasks = {name for name in celery_app.tasks if not name.startswith("celery.")}
    assert project_tasks, "autodiscovery found no task: the worker would have nothing to run"
    schedule = {**settings.CELERY_BEAT_SCHEDULE, **celery_app.conf.beat_schedule}
    for entry_name, entry in schedule.items():
        assert entry["task"] in celery_app.tasks, f"beat entry {entry_name!r}: unknown task"


def test_web_publishes_the_port_gunicorn_binds() -> None:
    web = _services()["web"]
    bind = _option(_argv(web["command"]), "-b", "--bind")
    assert bind is not None and bind.startswith("0.0.0.0:"), f"gunicorn binds {bind!r}"
    port = bind.rsplit(":", 1)[1]
    published = set()
    for entry in web.get("ports", []):
        if isinstance(entry, dict):
            published.add(str(entry["target"]))
        else:
            published.add(str(entry).split("/")[0].rsplit(":", 1)[-1])
    assert port in published, f"web binds {port} but publishes {published}"


def test_migrations_run_once_before_the_processes_that_use_the_database() -> None:
    services = _django_services()
    migrating = [
        name
        for name, service in services.items()
        if _argv(service.get("command") or [])[1:3] == ["manage.py", "migrate"]
    ]
    assert len(migrating) == 1, f"services running migrate: {migrating}"
    for name in ("web", "worker", "beat"):
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get(migrating[0], {}).get("condition") == "service_completed_successfully"


def test_dependencies_exist_and_wait_for_healthy_services() -> None:
    services = _services()
    for name in ("postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency in depends:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if isinstance(depends, dict) and dependency in ("postgres", "redis"):
                assert depends[dependency].get("condition") == "service_healthy"


def test_postgres_and_redis_images() -> None:
    assert str(_services()["postgres"]["image"]).startswith("postgres:16")
    assert str(_services()["redis"]["image"]).startswith("redis:7")


# --- .env.example ---------------------------------------------------------------------------------


def test_env_example_sets_every_required_production_variable() -> None:
    required = {name for name, needed in _production_env_reads().items() if needed}
    # Sanity check of the parser against variables production.py has always required.
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "GOOGLE_CLIENT_ID"} <= required
    assigned, _commented = _env_example()
    missing = sorted(name for name in required if not assigned.get(name))
    assert not missing, f".env.example leaves required variables unset: {missing}"


def test_env_example_documents_every_variable_production_reads() -> None:
    assigned, commented = _env_example()
    undocumented = sorted(set(_production_env_reads()) - set(assigned) - commented)
    assert not undocumented, f".env.example does not mention {undocumented}"


def test_env_example_sets_the_variables_compose_requires() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = {m.group(1) for m in _COMPOSE_VARIABLE.finditer(text) if m.group(2) in ("?", ":?")}
    mentioned = {m.group(1) for m in _COMPOSE_VARIABLE.finditer(text)}
    assigned, commented = _env_example()
    assert not sorted(name for name in required if not assigned.get(name))
    assert not sorted(mentioned - set(assigned) - commented)


def test_env_example_secret_key_placeholder_is_long_enough() -> None:
    # Django's security.W009 wants 50+ characters; a placeholder that passes shows the format.
    assert len(_env_example()[0]["DJANGO_SECRET_KEY"]) >= 50


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_python_matches_python_version_file() -> None:
    instructions = _dockerfile()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
    images = [
        re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
        for keyword, rest in instructions
        if keyword == "FROM"
    ]
    wanted = (ROOT / ".python-version").read_text().strip()
    assert images, "Dockerfile has no FROM"
    for image in images:
        assert image.startswith(f"python:{wanted}"), f"{image} is not Python {wanted}"


def test_dockerfile_copies_files_that_exist() -> None:
    for keyword, rest in _dockerfile():
        if keyword != "COPY" or "--from=" in rest:
            continue
        *sources, _destination = shlex.split(rest)
        for source in sources:
            if not source.startswith("--"):
                assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_dockerfile_command_points_at_real_code() -> None:
    commands = [rest for keyword, rest in _dockerfile() if keyword in ("CMD", "ENTRYPOINT")]
    assert commands, "Dockerfile has no CMD"
    last = commands[-1]
    _check_command(json.loads(last) if last.startswith("[") else shlex.split(last))


def test_dockerfile_builds_from_the_lock_file_and_collects_static_for_production() -> None:
    runs = [rest for keyword, rest in _dockerfile() if keyword == "RUN"]
    assert any("uv sync" in run and "--frozen" in run for run in runs)
    assert any("compilemessages" in run for run in runs)
    collect = [run for run in runs if "collectstatic" in run]
    assert len(collect) == 1, "static files must be collected at build time, once"
    assignments = dict(
        token.split("=", 1)
        for token in shlex.split(collect[0])
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", token)
    )
    assert assignments.get("DJANGO_SETTINGS_MODULE") == PRODUCTION_SETTINGS
    required = {name for name, needed in _production_env_reads().items() if needed}
    missing = sorted(required - set(assignments))
    assert not missing, f"collectstatic would stop on missing settings: {missing}"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git"} <= ignored
