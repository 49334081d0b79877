"""Minimal Dockerfile linter (hadolint is not installable here): the rules this project relies on.

    python -m deploy.docker.lint [Dockerfile ...]   # default: every deploy/docker/*.Dockerfile; exit 1 on findings

Rules: every FROM pins a tag (not latest) unless it names an earlier stage; the final stage runs as a non-root USER,
has a HEALTHCHECK and a CMD/ENTRYPOINT; every `pip install` pins with == (directly or through a -r file whose lines
all pin); COPY sources exist in the repository (build outputs listed in BUILD_OUTPUTS excepted).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = Path(__file__).resolve().parent
# Made by `make data/models` or the build itself, so absent from a fresh clone; the image build needs them.
BUILD_OUTPUTS = ("artifacts/",)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case, e.g. "FROM"
    args: str  # the rest, continuation lines joined
    line: int  # 1-based line of the keyword


def parse(text: str) -> list[Instruction]:
    """Instructions with backslash continuations joined; comments and blank lines dropped."""
    out: list[Instruction] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment inside a continued instruction
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = ""
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def _from_image(args: str) -> tuple[str, str | None]:
    words = [w for w in args.split() if not w.startswith("--")]
    alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return words[0], alias


def _tag_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    name_part = image.rsplit("/", 1)[-1]
    if ":" not in name_part:
        return f"base image {image!r} has no tag"
    if name_part.endswith(":latest"):
        return f"base image {image!r} uses :latest"
    return None


def _user_is_root(args: str) -> bool:
    user = args.split(":")[0].strip()
    return user in ("root", "0")


def _pip_problems(run_args: str) -> list[str]:
    problems = []
    for cmd in re.split(r"&&|;", run_args):
        words = shlex.split(cmd)
        if "pip" not in " ".join(words[:3]) or "install" not in words:
            continue
        args = words[words.index("install") + 1 :]
        skip = False
        for w in args:
            if skip:
                skip = False
                continue
            if w in ("-r", "--requirement"):
                skip = True  # the file is checked through the COPY that put it there (lint_file)
            elif w.startswith("-"):
                continue
            elif "==" not in w:
                problems.append(f"pip install of {w!r} is not pinned with ==")
    return problems


def _requirements_problems(path: str) -> list[str]:
    """Unpinned lines of a requirements file of the repository (path relative to the root)."""
    local = ROOT / path
    if not local.is_file():
        return [f"requirements file {path!r} does not exist"]
    problems = []
    for line in local.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and "==" not in line:
            problems.append(f"{path}: {line!r} is not pinned with ==")
    return problems


def lint_file(path: Path) -> list[str]:
    instructions = parse(path.read_text())
    all_stages = stages(instructions)
    if not all_stages:
        return [f"{path.name}: no FROM"]
    problems: list[str] = []
    aliases: set[str] = set()
    copied: dict[str, str] = {}  # image path -> repository path, for -r files
    for ins in instructions:
        if ins.keyword == "FROM":
            image, alias = _from_image(ins.args)
            if image not in aliases and (p := _tag_problem(image)):
                problems.append(p)
            if alias:
                aliases.add(alias)
        elif ins.keyword == "COPY" and "--from=" not in ins.args:
            srcs = [w for w in shlex.split(ins.args) if not w.startswith("--")][:-1]
            dest = shlex.split(ins.args)[-1]
            for src in srcs:
                copied[dest] = src
                if not src.startswith(BUILD_OUTPUTS) and not (ROOT / src).exists():
                    problems.append(f"line {ins.line}: COPY source {src!r} does not exist")
        elif ins.keyword == "RUN":
            for req in re.findall(r"(?:-r|--requirement)\s+(\S+)", ins.args):
                if req in copied:
                    problems += _requirements_problems(copied[req])
            problems += _pip_problems(ins.args)
    final = all_stages[-1]
    users = [i for i in final if i.keyword == "USER"]
    if not users:
        problems.append("final stage has no USER (would run as root)")
    elif _user_is_root(users[-1].args):
        problems.append(f"final stage USER {users[-1].args!r} is root")
    checks = [i for i in final if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].args.upper().startswith("NONE"):
        problems.append("final stage has no HEALTHCHECK")
    if not any(i.keyword in ("CMD", "ENTRYPOINT") for i in final):
        problems.append("final stage has no CMD or ENTRYPOINT")
    return [f"{path.name}: {p}" for p in problems]


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(DOCKER_DIR.glob("*.Dockerfile"))
    problems = [p for f in files for p in lint_file(f)]
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(files)} Dockerfiles, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
