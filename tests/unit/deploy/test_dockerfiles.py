"""The Dockerfiles under deploy/docker pass the project's lint rules, and the linter catches what it claims to."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.docker import lint

DOCKERFILES = sorted(lint.DOCKER_DIR.glob("*.Dockerfile"))
SERVICES = ("gateway", "retrieval", "ranking", "explanation")


def test_one_dockerfile_per_service_the_console_triton_and_trainer() -> None:
    names = {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES}
    assert names == {*SERVICES, "console", "triton", "trainer"}
    for p in DOCKERFILES:  # BuildKit's per-Dockerfile context filter keeps the venv, data and git out
        assert p.with_name(p.name + ".dockerignore").is_file()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_clean(path: Path) -> None:
    assert lint.lint_file(path) == []


@pytest.mark.parametrize("service", [*SERVICES, "console"])
def test_service_image_runs_its_module_on_its_port(service: str) -> None:
    final = lint.stages(lint.parse((lint.DOCKER_DIR / f"{service}.Dockerfile").read_text()))[-1]
    cmd = next(i for i in final if i.keyword == "CMD").args
    assert f'"services.{service}"' in cmd
    port = next(i for i in final if i.keyword == "EXPOSE").args
    health = next(i for i in final if i.keyword == "HEALTHCHECK").args
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert f"127.0.0.1:{port}" in health and f"SHOP_{service.upper()}_ADDR=0.0.0.0:{port}" in env


def test_requirements_fully_pinned() -> None:
    text = (lint.DOCKER_DIR / "requirements-services.txt").read_text()
    lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    pins = [ln for ln in lines if ln]
    assert pins and all("==" in ln for ln in pins)
    names = {ln.split("==")[0].split("[")[0].lower() for ln in pins}
    assert {"grpcio", "protobuf", "tritonclient", "numpy"} <= names
    assert "torch" not in names  # serving never imports it; it would add a gigabyte to every image


GOOD = """\
FROM python:3.11.13-slim-bookworm AS build
RUN pip install grpcio-tools==1.81.1
FROM python:3.11.13-slim-bookworm
COPY --from=build /x /x
USER 10001:10001
HEALTHCHECK CMD ["true"]
CMD ["python"]
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("python:3.11.13-slim-bookworm\nCOPY", "python\nCOPY"), "no tag"),
        (("python:3.11.13-slim-bookworm\nCOPY", "python:latest\nCOPY"), ":latest"),
        (("USER 10001:10001", "USER root"), "is root"),
        (("USER 10001:10001", "USER 0"), "is root"),
        (("USER 10001:10001\n", ""), "no USER"),
        (('HEALTHCHECK CMD ["true"]', "HEALTHCHECK NONE"), "no HEALTHCHECK"),
        (("grpcio-tools==1.81.1", "grpcio-tools"), "not pinned"),
        (('CMD ["python"]', ""), "no CMD"),
    ],
)
def test_linter_catches(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = tmp_path / "x.Dockerfile"
    path.write_text(GOOD)
    assert lint.lint_file(path) == []
    path.write_text(GOOD.replace(*change))
    problems = lint.lint_file(path)
    assert any(expected in p for p in problems), problems


def test_parse_joins_continuations() -> None:
    ins = lint.parse("FROM a:1\nRUN one \\\n  # note\n  && two\n")
    assert [(i.keyword, i.args) for i in ins] == [("FROM", "a:1"), ("RUN", "one && two")]
