"""Lint the deployment files: docker/compose.yaml, docker/Dockerfile, .env.example, docs/deploy.md.

No Docker engine runs in CI, so nothing here builds or starts a container; these tests catch the
drift that breaks a deployment silently: a service or variable dropped, a port renamed, a variable
the settings read but nobody documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SETTINGS_SOURCES = [ROOT / "cbplatform" / "env.py", *sorted((ROOT / "cbplatform" / "settings").glob("*.py"))]

SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat"}
REQUIRED_APP_ENV = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY"}
ENV_METHODS = ("str", "bool", "int", "float", "port", "choice", "list", "url", "database", "raw")
VAR_NAME = r"[A-Z][A-Z0-9_]*"

# `env.str("A", "B", default=…)`, `self.raw("LOG_LEVEL", "RUST_LOG")`, `os.environ.get("CB_VAR_DIR", …)`:
# the argument text up to the first closing parenthesis always holds the names, which come first.
ENV_CALL = re.compile(r"\b(?:env|self)\.(?:" + "|".join(ENV_METHODS) + r")\(([^)]*)")
OS_ENV_CALL = re.compile(r"\bos\.(?:environ\.get|getenv)\(([^)]*)")
QUOTED_NAME = re.compile(r"""["'](""" + VAR_NAME + r""")["']""")
INTERPOLATION = re.compile(r"\$\{(" + VAR_NAME + r")")


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def project_services(compose: dict) -> dict[str, dict]:
    """Services built from this repository (the ones running cbplatform code)."""
    return {name: spec for name, spec in compose["services"].items() if "build" in spec}


def environment(spec: dict) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(spec: dict) -> str:
    cmd = spec.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def documented_names() -> set[str]:
    """Names assigned in .env.example, commented out or not."""
    pattern = re.compile(r"^#?\s*(" + VAR_NAME + r")=", re.MULTILINE)
    return set(pattern.findall(ENV_EXAMPLE.read_text()))


def settings_names() -> set[str]:
    """Every variable cbplatform's settings read."""
    names: set[str] = set()
    for path in SETTINGS_SOURCES:
        text = path.read_text()
        for call in (ENV_CALL, OS_ENV_CALL):
            for args in call.findall(text):
                names.update(QUOTED_NAME.findall(args))
    # env_providers() reads through a local helper (keys("OPENAI_API_KEY", "OPENAI_API_KEYS")),
    # so take every ALL_CAPS string literal in its body.
    tree = ast.parse((ROOT / "cbplatform" / "env.py").read_text())
    (func,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "env_providers"]
    for node in ast.walk(func):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(VAR_NAME, node.value):
            names.add(node.value)
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for item in logical:
        keyword, _, rest = item.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def deploy_doc_yaml_blocks() -> list[str]:
    return re.findall(r"^```ya?ml\n(.*?)^```", DEPLOY_DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


# --- docker/compose.yaml ---------------------------------------------------------------------


def test_compose_has_every_service():
    assert set(load_compose()["services"]) >= SERVICES


def test_compose_project_services_are_the_app_processes():
    assert set(project_services(load_compose())) == {"migrate", "web", "worker", "beat"}


def test_compose_web_publishes_both_ports():
    web = load_compose()["services"]["web"]
    published = {str(port).split(":")[-1].split("/")[0] for port in web.get("ports", [])}
    assert {"3000", "4000"} <= published
    assert command(web).startswith("python manage.py serve")


def test_compose_app_services_run_production_settings_with_required_env():
    for name, spec in project_services(load_compose()).items():
        env = environment(spec)
        assert env.get("DJANGO_SETTINGS_MODULE") == "cbplatform.settings.production", name
        missing = REQUIRED_APP_ENV - {key for key, value in env.items() if value}
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_compose_secrets_are_required_not_defaulted():
    env = environment(load_compose()["services"]["web"])
    for name in ("SECRET_KEY", "ENCRYPTION_KEY"):
        assert env[name].startswith("${" + name + ":?"), f"{name} must fail loudly when unset"


def test_compose_celery_commands():
    services = load_compose()["services"]
    assert command(services["worker"]).startswith("celery -A cbplatform worker")
    assert command(services["beat"]).startswith("celery -A cbplatform beat")
    assert command(services["migrate"]).startswith("python manage.py migrate")


def test_compose_start_order():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    for name in ("postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} needs a healthcheck"


def test_compose_environment_names_are_documented():
    compose = load_compose()
    used = set(INTERPOLATION.findall(COMPOSE.read_text()))
    for spec in project_services(compose).values():
        used |= set(environment(spec))
    missing = used - documented_names()
    assert not missing, f"not in .env.example: {sorted(missing)}"


# --- docker/Dockerfile -----------------------------------------------------------------------


def test_dockerfile_is_multi_stage():
    stages = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.split()[0].startswith("python:3.11") for stage in stages)


def test_dockerfile_runs_as_non_root():
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER instruction: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_exposes_both_ports():
    exposed = set()
    for keyword, args in dockerfile_instructions():
        if keyword == "EXPOSE":
            exposed.update(port.split("/")[0] for port in args.split())
    assert {"3000", "4000"} <= exposed


def test_dockerfile_installs_existing_requirements():
    installs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN" and "pip " in args]
    files = {match for args in installs for match in re.findall(r"-r\s+(\S+)", args)}
    assert files, "no `pip … -r requirements/…` in the Dockerfile"
    for name in files:
        assert (ROOT / name).is_file(), f"{name} does not exist"


def test_dockerfile_defaults():
    instructions = dockerfile_instructions()
    env_lines = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "DJANGO_SETTINGS_MODULE=cbplatform.settings.production" in env_lines
    assert "PYTHONUNBUFFERED=1" in env_lines
    cmd = [args for keyword, args in instructions if keyword == "CMD"][-1]
    assert "manage.py" in cmd and "serve" in cmd
    assert any(keyword == "HEALTHCHECK" and "/health" in args for keyword, args in instructions)


# --- .env.example ----------------------------------------------------------------------------


def test_settings_name_extraction_finds_known_names():
    # Guards the extraction itself: a regex that matched nothing would make the next test pass vacuously.
    names = settings_names()
    expected = {
        "OPENAI_PORT",
        "WEB_CONCURRENCY",
        "CB_WEB_WORKERS",
        "CORS_ENABLED",
        "RUST_LOG",
        "DATABASE_URL",
        "API_KEY_REQUIRED",
        "SECRET_KEY",
        "CB_VAR_DIR",
        "OPENAI_API_KEYS",
        "AZURE_OPENAI_API_VERSION",
    }
    assert expected <= names, sorted(expected - names)


def test_every_settings_variable_is_documented():
    missing = (settings_names() | {"DJANGO_SETTINGS_MODULE"}) - documented_names()
    assert not missing, f"read by the settings but not in .env.example: {sorted(missing)}"


def test_env_example_lines_are_commented_and_unique():
    lines = ENV_EXAMPLE.read_text().splitlines()
    seen: set[str] = set()
    for index, line in enumerate(lines):
        match = re.match(r"^#?\s*(" + VAR_NAME + r")=", line)
        if not match:
            continue
        name = match.group(1)
        assert name not in seen, f"{name} appears twice"
        seen.add(name)
        previous = lines[index - 1] if index else ""
        assert previous.startswith("#") and not re.match(r"^#?\s*" + VAR_NAME + "=", previous), (
            f"{name} needs a one-line comment above it"
        )


def test_env_example_has_no_secret_values():
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"^#?\s*" + VAR_NAME + "=", line):
            value = line.split("=", 1)[1]
            assert not re.search(r"sk-[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{20,}", value), line


# --- docs/deploy.md --------------------------------------------------------------------------


def test_deploy_doc_yaml_parses():
    blocks = deploy_doc_yaml_blocks()
    assert blocks, "docs/deploy.md has no yaml blocks"
    for block in blocks:
        list(yaml.safe_load_all(block))


def test_deploy_doc_kubernetes_objects():
    docs = [doc for block in deploy_doc_yaml_blocks() for doc in yaml.safe_load_all(block) if doc]
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
    kinds = [doc["kind"] for doc in docs]
    assert kinds.count("Deployment") >= 3
    assert "Job" in kinds and "Service" in kinds

    web = by_name[("Deployment", "cbplatform-web")]
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert {port["containerPort"] for port in container["ports"]} >= {3000, 4000}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": 3000}, probe
    assert any("secretRef" in source for source in container["envFrom"])

    assert by_name[("Deployment", "cbplatform-beat")]["spec"]["replicas"] == 1
    service = next(doc for doc in docs if doc["kind"] == "Service")
    assert {port["port"] for port in service["spec"]["ports"]} >= {3000, 4000}


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_deploy_doc_workloads_run_as_uid_10001(kind):
    docs = [doc for block in deploy_doc_yaml_blocks() for doc in yaml.safe_load_all(block) if doc]
    for doc in (d for d in docs if d["kind"] == kind):
        assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001, doc["metadata"]["name"]


# --- Redis persistence (the usage ledger survives a Redis restart) ----------------------------


def appendonly(args) -> bool:
    args = args.split() if isinstance(args, str) else list(args)
    return any(a == "--appendonly" and b == "yes" for a, b in zip(args, args[1:], strict=False))


def test_compose_redis_persists_with_aof():
    assert appendonly(load_compose()["services"]["redis"]["command"])
    assert any(volume.endswith(":/data") for volume in load_compose()["services"]["redis"]["volumes"])


def test_deploy_doc_redis_example_persists_with_aof():
    docs = [doc for block in deploy_doc_yaml_blocks() for doc in yaml.safe_load_all(block) if doc]
    (redis,) = [doc for doc in docs if doc["kind"] == "StatefulSet" and doc["metadata"]["name"] == "redis"]
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert appendonly(container["args"])
    assert container["volumeMounts"][0]["mountPath"] == "/data" and redis["spec"]["volumeClaimTemplates"]
