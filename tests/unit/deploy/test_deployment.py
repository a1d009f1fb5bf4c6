"""The deployment files reference things that exist.

No Docker engine runs here, so these tests read docker-compose.yml, the Dockerfile and
.dockerignore and check what `docker compose up` would trip over: images without a pinned tag,
dependencies on services that do not exist or without a start condition, commands our CLI does not
have, environment variables no setting reads (or values a setting rejects), colliding host ports,
search attributes that differ from the ones the workflow upserts, missing health checks, and files
mounted or copied that are not in the repository. The container health check script
(deploy/healthcheck.py) reads PID 1's command here; it runs for real against the test Temporal
server, workers and API in tests/integration/deploy/test_healthcheck.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices
from temporalio.api.enums.v1 import IndexedValueType

from notifications.config import Settings
from notifications.types import SEARCH_ATTRIBUTES
from processes.cli import build_parser
from tests.support.deploy import load_healthcheck
from tests.support.system import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = {"migrate": "migrate", "worker": "worker", "api": "api"}  # service -> CLI command
MUST_HAVE_HEALTHCHECK = ("postgresql", "temporal", "worker", "api")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
ONE_SHOT_RESTARTS = {None, "no"}  # plus on-failure[:n]

_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


# -- helpers -----------------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`, with `env` as the shell."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise KeyError(f"${{{name}}} must be set: {arg}")
        return ""

    return _VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: v for k, _, v in (item.partition("=") for item in env)}
    return {str(k): None if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def parse_cli(argv: list[str]) -> Any:
    assert argv and argv[0] == "notifications", f"{argv} does not run the `notifications` CLI"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"`{shlex.join(argv)}` is not a valid command of our CLI (argparse exit {exc.code})")


def settings_env_names() -> set[str]:
    """The environment variables Settings reads (pydantic-settings, case-insensitive)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(name.upper())
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def exec_form(keyword: str, rest: str) -> list[str]:
    try:
        value = json.loads(rest)
    except json.JSONDecodeError:
        pytest.fail(f"{keyword} {rest!r} is not in exec (JSON) form: SIGTERM would go to /bin/sh, not our process")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{keyword} {rest!r}"
    return value


def image_copies() -> dict[str, Path]:
    """Destination in the image -> source in the repository, for COPY from the build context."""
    copies: dict[str, Path] = {}
    for keyword, rest in final_stage():
        if keyword == "COPY" and "--from=" not in rest:
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            copies[parts[-1]] = ROOT / parts[0]
    return copies


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each `ports` entry that publishes a host port."""
    out = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published"):
                out.append((entry.get("host_ip", "0.0.0.0"), int(entry["published"]), int(entry["target"])))
            continue
        parts = interpolate(str(entry)).split("/")[0].split(":")
        if len(parts) == 1:
            continue  # container port only: Docker picks a free host port
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


def duration_seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, rest = 0.0, value.strip()
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", rest):
        total += float(number) * units[unit]
    assert total > 0, f"cannot read the duration {value!r}"
    return total


# -- docker-compose.yml --------------------------------------------------------------------------------
def test_every_service_has_an_image_or_a_build() -> None:
    missing = [name for name, svc in services().items() if not (svc.get("image") or svc.get("build"))]
    assert not missing, f"services without image or build: {missing}"
    for name in APP_SERVICES:
        svc = services()[name]
        assert svc.get("build") in (".", {"context": "."}), f"{name} must build the Dockerfile at the repo root"


def test_images_are_pinned() -> None:
    for name, svc in services().items():
        image = svc.get("image")
        if not image:
            continue
        resolved = interpolate(str(image))
        repository, _, tag = resolved.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag (it would mean :latest)"
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert "@" in resolved or re.search(r"\d", tag), f"{name}: tag {tag!r} is not a version"


def test_temporal_uses_the_official_images_and_one_server_version() -> None:
    images = {name: interpolate(str(svc.get("image", ""))) for name, svc in services().items()}
    repos = {image.rpartition(":")[0] for image in images.values()}
    assert "temporalio/auto-setup" not in repos, "temporalio/auto-setup is retired: use temporalio/server"
    for repo in ("temporalio/server", "temporalio/admin-tools", "temporalio/ui"):
        assert repo in repos, f"no service runs {repo}"
    server = {i.rpartition(":")[2] for i in images.values() if i.startswith("temporalio/server:")}
    tools = {i.rpartition(":")[2] for i in images.values() if i.startswith("temporalio/admin-tools:")}
    assert len(server) == 1 and tools == server, (
        f"temporal-sql-tool (admin-tools {tools}) must install the schema of the server version {server}"
    )
    temporal = next(svc for svc in services().values() if str(svc.get("image", "")).startswith("temporalio/server:"))
    env = environment(temporal)
    assert env.get("DB") == "postgres12" and env.get("POSTGRES_SEEDS") in services(), env


def test_depends_on_targets_exist_and_have_conditions() -> None:
    all_services = services()
    for name, svc in all_services.items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with a condition"
        for target, spec in depends.items():
            assert target in all_services, f"{name} depends on {target!r}, which is not a service"
            condition = (spec or {}).get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                check = all_services[target].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{name} waits for {target} healthy: no check"
            if condition == "service_completed_successfully":
                restart = all_services[target].get("restart")
                assert restart in ONE_SHOT_RESTARTS or str(restart).startswith("on-failure"), (
                    f"{name} waits for {target} to complete, but {target} restarts {restart!r} (never completes)"
                )


def test_start_order_of_the_app() -> None:
    svc = services()
    assert svc["migrate"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    sa_job = search_attribute_service()
    for name in ("worker", "api"):
        depends = svc[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends[sa_job]["condition"] == "service_completed_successfully", name
        temporal = [t for t in depends if str(svc[t].get("image", "")).startswith("temporalio/server:")]
        assert temporal and depends[temporal[0]]["condition"] == "service_healthy", name


@pytest.mark.parametrize("service, subcommand", sorted(APP_SERVICES.items()))
def test_app_commands_exist_in_our_cli(service: str, subcommand: str) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "notifications" in scripts, "pyproject.toml installs no `notifications` console script"
    argv = command(services()[service])
    args = parse_cli(argv)
    assert args.command == subcommand, f"{service} runs `{shlex.join(argv)}`"
    assert callable(getattr(args, "func", None)), f"`{shlex.join(argv)}` has no handler"


def test_worker_and_api_options() -> None:
    worker = parse_cli(command(services()["worker"]))
    assert worker.env == "production"
    api_service = services()["api"]
    api = parse_cli(command(api_service))
    assert api.host == "0.0.0.0", "the API must listen on all interfaces inside its container"
    targets = {container for _, _, container in published_ports(api_service)}
    assert api.port in targets, f"the API listens on {api.port} but the compose file publishes {targets}"


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_environment_names_are_settings(service: str) -> None:
    known = settings_env_names()
    unknown = sorted(name for name in environment(services()[service]) if name.upper() not in known)
    assert not unknown, f"{service}: no setting reads {unknown} (notifications/config.py)"


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_environment_values_are_valid_settings(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the container sees (Dockerfile ENV + compose environment) loads as Settings."""
    shell = {"JWT_SECRET": "x" * 40, "UNSUBSCRIBE_SECRET": "y" * 40}
    values = {**dockerfile_env(), **environment(services()[service])}
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        if value is not None and name.upper() in settings_env_names():
            monkeypatch.setenv(name, interpolate(value, shell))
    monkeypatch.chdir(tmp_path)  # no .env of the developer
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_production, f"{service} does not run with ENV=production"
    assert settings.log_file is None, f"{service} writes a log file inside the container; logs go to stdout"

    url = urlsplit(settings.database_url)
    assert url.scheme.startswith("postgres"), f"{service}: DATABASE_URL {settings.database_url!r}"
    assert url.hostname in services(), f"{service}: DATABASE_URL points at {url.hostname!r}, not a service"
    assert "postgresql" in url.hostname and url.port == 5432
    init = (ROOT / "deploy/postgres/init-databases.sh").read_text()
    assert f"CREATE DATABASE {url.path.lstrip('/')} OWNER {url.username}" in init, "the app database is not created"

    host, _, port = settings.temporal_address.rpartition(":")
    assert host in services() and str(services()[host].get("image", "")).startswith("temporalio/server:"), host
    assert port == "7233"

    if service == "api":
        from notifications.auth import key_set

        key_set(settings)  # raises when the production API could not verify tokens


def test_jwt_secret_is_required_from_the_operator() -> None:
    value = environment(services()["api"]).get("JWT_SECRET")
    assert value and re.fullmatch(r"\$\{JWT_SECRET:\?[^}]+\}", value), (
        "JWT_SECRET must come from the operator (${JWT_SECRET:?...}), never a default in the file"
    )
    with pytest.raises(KeyError):
        interpolate(value)


def test_worker_gets_time_for_a_graceful_shutdown() -> None:
    worker = services()["worker"]
    grace = duration_seconds(str(worker.get("stop_grace_period", "10s")))
    shutdown = float(interpolate(environment(worker).get("GRACEFUL_SHUTDOWN_SECONDS") or "30"))
    assert grace > shutdown, f"docker kills the worker after {grace}s, before its {shutdown}s graceful shutdown"
    assert not published_ports(worker), "worker replicas would collide on a published host port"


def test_published_ports_do_not_collide() -> None:
    seen: dict[int, str] = {}
    for name, svc in services().items():
        for _, host_port, _ in published_ports(svc):
            assert host_port not in seen, f"host port {host_port}: {seen[host_port]} and {name}"
            seen[host_port] = name


def search_attribute_service() -> str:
    found = [name for name, svc in services().items() if "search-attribute create" in " ".join(command(svc))]
    assert len(found) == 1, f"expected one search-attribute job, found {found}"
    return found[0]


def test_search_attribute_job_registers_exactly_our_attributes() -> None:
    svc = services()[search_attribute_service()]
    script = "\n".join(command(svc))
    assert str(svc["image"]).startswith("temporalio/admin-tools:")
    registered = dict(re.findall(r"^\s*ensure\s+(\w+)\s+(\w+)\s*$", script, re.MULTILINE))

    def cli_type(key: Any) -> str:
        name = IndexedValueType.Name(int(key.indexed_value_type)).removeprefix("INDEXED_VALUE_TYPE_")
        return "".join(part.title() for part in name.split("_"))

    expected = {key.name: cli_type(key) for key in SEARCH_ATTRIBUTES}
    assert registered == expected, f"the job registers {registered}; the workflow upserts {expected}"
    assert "search-attribute list" in script, "the job must skip attributes that exist (idempotent)"
    env = environment(svc)
    namespace_jobs = [t for t in svc.get("depends_on", {}) if "namespace create" in script_of(t)]
    assert namespace_jobs, "the search attributes need the namespace: depend on the namespace job"
    assert env.get("TEMPORAL_NAMESPACE") == environment(services()["worker"])["TEMPORAL_NAMESPACE"]


def script_of(service: str) -> str:
    """The command of a service, plus the content of a /scripts/... file it runs from a bind mount."""
    svc = services()[service]
    text = " ".join(command(svc))
    for volume in svc.get("volumes") or []:
        source, _, target = str(volume).partition(":")
        target = target.split(":")[0]
        for word in command(svc):
            if word.startswith(target + "/"):
                text += (ROOT / source / word[len(target) + 1 :]).read_text()
    return text


def test_health_checks_exist() -> None:
    for name in MUST_HAVE_HEALTHCHECK:
        check = services()[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ("worker", "api"):
        test = services()[name]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        script = test[2]
        copies = image_copies()
        assert script in copies and copies[script].is_file(), f"{name}: {script} is not copied into the image"
        assert test[3:] == [name], f"{name}: health check mode {test[3:]}"


def test_mounted_files_and_scripts_exist() -> None:
    for name, svc in services().items():
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
        for word in command(svc):
            if word.startswith("/scripts/"):
                mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc.get("volumes") or []}
                path = ROOT / mounts["/scripts"] / word.removeprefix("/scripts/")
                assert path.is_file(), f"{name} runs {word}: {path} is missing"
                assert path.stat().st_mode & 0o111, f"{path} is not executable"
    temporal = services()["temporal"]
    dynamic = environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in temporal["volumes"]}
    relative = Path(str(dynamic)).relative_to("config/dynamicconfig")
    config = yaml.safe_load((ROOT / mounts["/etc/temporal/config/dynamicconfig"] / relative).read_text())
    assert config["matching.priorityLevels"][0]["value"] >= 10, "priorities 1-10 need ten priority levels"


def test_temporal_dynamic_config_matches_the_dev_server() -> None:
    """What `notifications dev` sets for behaviour (priorities, fairness, batch operations) is set in
    production too; only test speed-ups and the single task-queue partition stay dev-only."""
    from processes.devserver import DYNAMIC_CONFIG

    dev_only = {
        "history.timerProcessorMaxTimeShift",
        "matching.numTaskqueueReadPartitions",
        "matching.numTaskqueueWritePartitions",
    }
    temporal = services()["temporal"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in temporal["volumes"]}
    relative = Path(str(environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"])).relative_to("config/dynamicconfig")
    config = yaml.safe_load((ROOT / mounts["/etc/temporal/config/dynamicconfig"] / relative).read_text())
    for item in DYNAMIC_CONFIG:
        key, _, value = item.partition("=")
        if key in dev_only:
            continue
        assert key in config, f"the dev server sets {key}={value}; the compose Temporal server does not"
        assert config[key][0]["value"] == yaml.safe_load(value), f"{key}: {config[key][0]['value']} != {value}"


# -- Dockerfile and .dockerignore ---------------------------------------------------------------------
def test_dockerfile_base_user_and_install() -> None:
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases
    assert any(keyword == "RUN" and re.search(r"pip install[^&]* \.(\s|$)", rest) for keyword, rest in instructions)
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    unknown = sorted(
        name
        for name in dockerfile_env()
        if name.upper() not in settings_env_names() and not re.match(r"PATH$|PYTHON|PIP_", name)
    )
    assert not unknown, f"the Dockerfile sets {unknown}, which no setting reads"


def test_dockerfile_cmd_and_healthcheck() -> None:
    stage = final_stage()
    assert not [rest for keyword, rest in stage if keyword == "ENTRYPOINT"], "CMD is overridden per service"
    cmds = [exec_form("CMD", rest) for keyword, rest in stage if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    args = parse_cli(cmds[-1])
    assert args.command == "worker" and args.env == "production", f"default CMD {cmds[-1]}"
    checks = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    argv = exec_form("HEALTHCHECK CMD", checks[0].split(" CMD ", 1)[1])
    assert argv[1] in image_copies() and image_copies()[argv[1]].is_file(), argv
    assert argv[2:] == ["auto"], "one image, two processes: the image's check must tell worker and API apart"


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") or fnmatch.fnmatch(path, p + "/*")
            for p in patterns
        )

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = ["pyproject.toml", "README.md", "deploy/healthcheck.py"]
    needed += [p.rstrip("*") + "/__init__.py" for p in packages["include"] if (ROOT / p.rstrip("*")).is_dir()]
    assert not [path for path in needed if ignored(path)], "the image build needs these files"
    for path in (".venv/bin/python", ".git/config", ".env", ".data/notifications.db", "tests/conftest.py"):
        assert ignored(path), f"{path} would be sent to the build context"


# -- deploy/ ----------------------------------------------------------------------------------------------
def test_systemd_units_run_our_commands() -> None:
    for unit, subcommand in (("notifications-worker.service", "worker"), ("notifications-api.service", "api")):
        text = (ROOT / "deploy" / unit).read_text()
        exec_start = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE)
        assert exec_start, f"{unit} has no ExecStart"
        argv = shlex.split(exec_start.group(1))
        argv[0] = Path(argv[0]).name
        assert parse_cli(argv).command == subcommand, unit
        assert re.search(r"^KillSignal=SIGTERM$", text, re.MULTILINE), unit
        assert re.search(r"^User=(?!root$)\S+$", text, re.MULTILINE), f"{unit} must not run as root"
        env_names = re.findall(r"^Environment=(\w+)=", text, re.MULTILINE)
        assert not [n for n in env_names if n.upper() not in settings_env_names()], f"{unit}: {env_names}"
        if subcommand == "worker":
            stop = duration_seconds(re.search(r"^TimeoutStopSec=(\S+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
            assert stop > Settings.model_fields["graceful_shutdown_seconds"].default, "systemd kills it too early"


# -- deploy/healthcheck.py, what it reads ---------------------------------------------------------------
def test_healthcheck_reads_the_command_of_pid_1(tmp_path: Path) -> None:
    hc = load_healthcheck()
    proc = tmp_path / "cmdline"
    argv_api = ["/opt/venv/bin/python", "/opt/venv/bin/notifications", "api", "--host", "0.0.0.0", "--port", "9001"]
    proc.write_bytes("\0".join(argv_api).encode() + b"\0")
    argv = hc.pid1_command(proc)
    assert argv == ["api", "--host", "0.0.0.0", "--port", "9001"]
    assert hc.detect_mode(argv) == "api" and hc.api_port(argv) == 9001
    proc.write_bytes("\0".join(["/opt/venv/bin/python", "/opt/venv/bin/notifications", "worker"]).encode())
    assert hc.detect_mode(hc.pid1_command(proc)) == "worker"
    assert hc.pid1_command(tmp_path / "missing") == []
    assert hc.main(["bogus"]) == 2
