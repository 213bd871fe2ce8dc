"""Shared machinery of the container tests: the Docker gate, the project image, and compose
stacks generated from scenarios that are always torn down.

The gate: without a Docker engine these tests skip, except when ``CI=true``, where a missing
engine (or compose, or promtool) is a FAILURE — CI provisions them (scripts/provision.sh),
so their absence means the pipeline is broken, not that the tests do not apply.

Fixtures are imported by the test modules (``from tests.system.docker_helpers import ...``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hgc.testbed.records import read_records
from tests.conftest import IN_CI, poll_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
# One tag per test session: sessions from different checkouts may share the engine.
TEST_IMAGE = os.environ.get("HGC_TEST_IMAGE", f"hgc-edge:test-{uuid.uuid4().hex[:8]}")
PROMETHEUS_IMAGE = os.environ.get("HGC_PROMETHEUS_IMAGE", "hgc-prometheus:local")
PROJECT_PREFIX = "hgct"  # every compose project and swarm stack the tests create
LABEL = "hgc.test"  # on every container/network the tests create (value: the project name)
# On every image a session builds: "<host>:<pid>" of the session, so a later session can
# remove the images of one that was killed before its clean-up ran (and only those).
OWNER_LABEL = "hgc.test.owner"
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def unavailable(what: str) -> None:
    """Skip outside CI, fail in CI: the one place that decides."""
    if IN_CI:
        pytest.fail(f"CI=true but {what}: scripts/provision.sh should have provided it")
    pytest.skip(what)


def run(cmd: list[str], timeout: float = 300, check: bool = True, **kw: Any) -> str:
    """Run a command; on failure raise with its output (never a silent non-zero)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{output}")
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A docker SDK client to a live engine with compose v2, or skip/fail per the gate."""
    try:
        import docker
    except ImportError:
        unavailable("the docker SDK is not installed (pip install -e '.[dev]')")
    if shutil.which("docker") is None:
        unavailable("no docker CLI on PATH")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        unavailable(f"no Docker engine answering ({exc.__class__.__name__}: {exc})")
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if proc.returncode != 0:
        unavailable("docker compose v2 is not installed")
    return client


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
    assert path is not None
    return path


def base_image(client: Any) -> str:
    """The locally built base where it exists (no registry here), else the official one."""
    env = os.environ.get("HGC_BASE_IMAGE")
    if env:
        return env
    try:
        client.images.get("hgc-base:bookworm")
        return "hgc-base:bookworm"
    except Exception:
        return "python:3.11-slim-bookworm"


# The session's image, built at most once: every test module imports the fixture, and pytest
# makes one fixture per importing module, so the build is cached here, not by pytest.
_SESSION_IMAGE: list[str] = []


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's session sharing this engine: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_images(client: Any) -> list[str]:
    """Remove the images of test sessions on this host whose process is gone (killed before
    their clean-up ran); returns their tags. Never touches an image without the label."""
    removed = []
    for image in client.images.list(filters={"label": OWNER_LABEL}):
        owner = (image.labels or {}).get(OWNER_LABEL, "")
        if owner == OWNER or _owner_alive(owner):
            continue
        with contextlib.suppress(Exception):
            client.images.remove(image.id, force=True)
            removed.extend(image.tags or [image.id])
    return removed


def _remove_session_image(tag: str) -> None:
    """At interpreter exit (also after a failed or interrupted session): this session's
    image, and this project's untagged build-stage images the classic builder left. The CLI,
    not the SDK: its client may already be torn down at exit."""
    if "HGC_TEST_IMAGE" not in os.environ:
        proc = subprocess.run(
            ["docker", "image", "rm", "--force", tag], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0 and "No such image" not in proc.stderr:
            print(f"docker_helpers: could not remove {tag}: {proc.stderr.strip()}", file=sys.stderr)
    subprocess.run(
        ["docker", "image", "prune", "--force", "--filter", "dangling=true",
         "--filter", "label=org.hgc-edge.image"],
        capture_output=True, timeout=120,
    )  # fmt: skip


def build_image(platform: str, base: str, tag: str, timeout: float = 600) -> str:
    """The repository's Dockerfile built for ``platform`` from a fresh wheelhouse on
    ``base``, tagged ``tag`` and labelled with this session as its owner. Its dependency
    stage is built first and tagged ``hgc-deps:<arch>`` (as ``make image`` does), so its
    layers survive the pruning of untagged images and the next build reuses them: seconds,
    not the half hour an emulated arm64 dependency install takes."""
    arch = platform.split("/")[1]
    wheelhouse = Path(tempfile.mkdtemp(prefix="hgct-wheels-"))
    try:
        env = {**os.environ, "PYTHON": sys.executable}
        run(["bash", "scripts/wheels.sh", platform, str(wheelhouse)], cwd=ROOT, env=env)
        # The build context is the repository with its .dockerignore; point its wheelhouse/
        # at the fresh one through a temporary context holding only what the image needs.
        ctx = Path(tempfile.mkdtemp(prefix="hgct-ctx-"))
        try:
            shutil.copy(ROOT / "Dockerfile", ctx / "Dockerfile")
            shutil.copytree(wheelhouse, ctx / "wheelhouse")
            build = ["docker", "build", "--quiet", "--platform", platform,
                     "--build-arg", f"BASE_IMAGE={base}"]  # fmt: skip
            run([*build, "--target", "deps", "-t", f"hgc-deps:{arch}", str(ctx)], timeout=timeout)
            atexit.register(_remove_session_image, tag)
            run([*build, "--label", f"{OWNER_LABEL}={OWNER}", "-t", tag, str(ctx)], timeout=timeout)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
    finally:
        shutil.rmtree(wheelhouse, ignore_errors=True)
    return tag


def build_session_image(client: Any) -> str:
    """The project image from the working tree's wheelhouse, tagged ``TEST_IMAGE``."""
    if "HGC_TEST_IMAGE" in os.environ:
        with contextlib.suppress(Exception):
            client.images.get(TEST_IMAGE)
            return TEST_IMAGE
    sweep_images(client)
    return build_image("linux/amd64", base_image(client), TEST_IMAGE)


@pytest.fixture(scope="session")
def hgc_image(docker_client: Any) -> str:
    """The project image, built once per session and removed when the session's process
    exits (the layer cache keeps the next build quick)."""
    if not _SESSION_IMAGE:
        _SESSION_IMAGE.append(build_session_image(docker_client))
    return _SESSION_IMAGE[0]


@pytest.fixture(scope="session")
def prometheus_image(docker_client: Any) -> str:
    """A Prometheus image: the one named by HGC_PROMETHEUS_IMAGE if present, else built from
    the host's Debian binary (scripts/prometheus-image.sh)."""
    try:
        docker_client.images.get(PROMETHEUS_IMAGE)
        return PROMETHEUS_IMAGE
    except Exception:
        pass
    require_tool("prometheus")
    env = {**os.environ, "HGC_BASE_IMAGE": base_image(docker_client)}
    run(["bash", "scripts/prometheus-image.sh", PROMETHEUS_IMAGE], cwd=ROOT, env=env)
    return PROMETHEUS_IMAGE


def scenario_stack(
    scenario_path: str | Path,
    workdir: Path,
    image: str,
    *,
    scheme: str = "hgc",
    iterations: int | None = None,
    master_overrides: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    model_spec: dict[str, Any] | None = None,
    data_spec: dict[str, Any] | None = None,
    compute: str | None = None,
    prometheus_image: str = PROMETHEUS_IMAGE,
    shape: dict[str, dict[str, str]] | None = None,
    cpus: dict[str, str] | None = None,
    node_env: dict[str, str] | None = None,
    linger_s: float = 0.0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generate (compose dict, master config) into ``workdir`` with the generator's own
    functions; the master records every iteration to ``workdir/out/record.jsonl``."""
    from common.scenario import load_scenario
    from hgc.compose.generate import StackOptions, build_stack, master_config

    scenario = load_scenario(scenario_path)
    opts = StackOptions(scheme=scheme, image=image, iterations=iterations)
    stack = build_stack(scenario, opts)
    config = master_config(scenario, opts)
    if opts.curve:  # the stack's secrets and key configs point into workdir/<keys_dir>
        from common.runtime.security import write_keys
        from hgc.compose.generate import key_nodes, plan_stack

        write_keys(workdir / opts.keys_dir, key_nodes(plan_stack(scenario, opts), scenario))
    if training:
        config["training"].update(training)
    if model_spec:
        config["model_spec"] = model_spec
    if data_spec:
        config["data_spec"] = data_spec
    if compute:
        for entry in config["emulation_spec"].values():
            entry["compute"] = compute
    for sub in ("prometheus", "grafana"):
        shutil.copytree(COMPOSE_DIR / sub, workdir / sub, dirs_exist_ok=True)
    from hgc.compose.generate import prometheus_config

    (workdir / "prometheus" / "prometheus.yml").write_text(
        yaml.safe_dump(prometheus_config(scenario))
    )
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    out.chmod(0o777)  # the master runs as uid 10001 and writes its record here
    master = stack["services"]["master"]
    master["volumes"] = [f"{out}:/out"]
    master["environment"]["HGC_RECORD"] = "/out/record.jsonl"
    master["environment"]["HGC_CHECKPOINT"] = "/out/checkpoint.npz"  # beside the record
    master["environment"].update(master_overrides or {})
    for svc in stack["services"].values():
        svc.pop("build", None)  # the tests run the image built by the hgc_image fixture
        if svc.get("labels", {}).get("hgc.role") != "monitoring":
            svc["image"] = image
    stack["services"]["prometheus"]["image"] = prometheus_image
    for svc in stack["services"].values():
        svc.pop("ports", None)  # tests reach containers by address; no host ports to collide
    for svc in stack["services"].values():
        if "hgc.node" in svc.get("labels", {}):
            # No end-of-run linger unless asked: most tests start no Prometheus.
            svc["environment"]["HGC_METRICS_LINGER_S"] = f"{linger_s:g}"
            svc["environment"].update(node_env or {})
    for node, env in (shape or {}).items():
        stack["services"][node]["environment"].update(env)
    for node, limit in (cpus or {}).items():
        svc = stack["services"][node]
        svc["deploy"].setdefault("resources", {})["limits"] = {"cpus": limit}
        svc["environment"].update(
            {"HGC_CPU_LIMIT": limit, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        )
    return stack, config


class Stack:
    """A compose project the test owns: written to ``workdir``, brought up, always removed."""

    def __init__(self, workdir: Path, stack: dict[str, Any], config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.name = f"{PROJECT_PREFIX}-{uuid.uuid4().hex[:8]}"
        self.stack = stack
        self.stack["name"] = self.name
        for svc in stack["services"].values():
            svc.setdefault("labels", {})[LABEL] = self.name
        self.stack["networks"] = {"hgc": {"labels": {LABEL: self.name}}}
        self.file = workdir / "stack.yaml"
        self.file.write_text(yaml.safe_dump(self.stack, sort_keys=False))
        (workdir / "master.json").write_text(json.dumps(config, indent=2))
        self.config = config

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        return run(
            ["docker", "compose", "-p", self.name, "-f", str(self.file), *args],
            timeout=timeout,
            check=check,
            cwd=self.workdir,
        )

    def up(self, services: list[str] | None = None) -> None:
        """Start the nodes (not Grafana: no registry here) or the given services."""
        names = services or [
            s for s in self.stack["services"] if s not in ("grafana", "prometheus")
        ]
        self.compose("up", "-d", "--no-build", *names)

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)

    def container(self, client: Any, service: str) -> Any:
        found = client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.name}",
                               f"com.docker.compose.service={service}"]},
        )  # fmt: skip
        assert found, f"no container for service {service} in {self.name}"
        return found[0]

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.workdir / "out" / "record.jsonl")

    def wait_master_exit(self, client: Any, timeout: float = 180) -> int:
        master = self.container(client, "master")

        def exited() -> bool:
            master.reload()
            return master.status in ("exited", "dead")

        try:
            poll_for(exited, timeout=timeout, interval=0.5, what="the master container to exit")
        except TimeoutError:
            raise AssertionError(f"master still running:\n{self.logs('master')}") from None
        return int(master.attrs["State"]["ExitCode"])

    def logs(self, service: str, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), service, check=False)


@contextlib.contextmanager
def running_stack(
    scenario_path: str | Path, image: str, services: list[str] | None = None, **kw: Any
) -> Iterator[Stack]:
    """Generate, start and — whatever happens — remove a stack."""
    workdir = Path(tempfile.mkdtemp(prefix="hgct-stack-"))
    stack = Stack(workdir, *scenario_stack(scenario_path, workdir, image, **kw))
    try:
        stack.up(services)
        yield stack
    finally:
        stack.down()
        shutil.rmtree(workdir, ignore_errors=True)


def sweep_leftovers(client: Any) -> None:
    """Remove any container or network a previous, killed test session left behind."""
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for n in client.networks.list(filters={"label": LABEL}):
        with contextlib.suppress(Exception):
            n.remove()


def run_on_network(
    client: Any,
    stack: Stack,
    image: str,
    command: list[str],
    *,
    volumes: dict[str, dict[str, str]] | None = None,
    environment: dict[str, str] | None = None,
) -> Any:
    """Start, detached, an extra container of ``image`` running ``command`` (not the entry
    point) on the stack's network, labelled for the sweep: e.g. an attacker. The caller
    removes it (before ``Stack.down``, which cannot remove a network still in use)."""
    return client.containers.run(
        image,
        command,
        entrypoint=[],
        network=f"{stack.name}_hgc",
        labels={LABEL: stack.name},
        volumes=volumes or {},
        environment=environment or {},
        detach=True,
    )


def container_ip(container: Any) -> str:
    """The address of a running container on its (first) network: the host reaches it
    directly, no port published."""
    container.reload()
    return str(next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])
