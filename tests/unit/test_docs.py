"""The README and docs/ stay true to the repository: the configuration table lists exactly the SHOP_* variables the
code reads, the command table every Makefile target, every relative link resolves, and the README stays short.

Static checks only (the code is parsed, not imported; no network), so they take well under a second and hold whether
settings are read through pydantic settings classes (libs/config.py) or by name (os.environ).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("libs", "services", "tools", "training", "loadtest", "deploy")
GENERATED = ROOT / "libs" / "gen"
ENV_NAME = re.compile(r"SHOP_[A-Z0-9_]*[A-Z0-9]")  # a prefix such as "SHOP_EVENTS_" is not a name
README = ROOT / "README.md"
README_MAX_LINES = 170


def _python_files() -> Iterator[Path]:
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if GENERATED not in path.parents:
                yield path


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.AST | None) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return ""


def _names_in(node: ast.AST) -> set[str]:
    return (
        {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        | {v for n in ast.walk(node) if (v := _const_str(n))}
    )  # string annotations


class _SettingsClass:
    """What a class body says about the environment: its bases, env_prefix and (field, aliases, annotation)."""

    def __init__(self, node: ast.ClassDef) -> None:
        self.bases = {
            b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, (ast.Name, ast.Attribute))
        }
        self.prefix: str | None = None
        self.fields: list[tuple[str, list[str], set[str]]] = []
        for stmt in node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            if any(getattr(t, "id", "") == "model_config" for t in targets):
                self.prefix = _env_prefix(stmt.value)  # type: ignore[attr-defined]
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and "ClassVar" not in _names_in(stmt.annotation)
            ):
                self.fields.append((stmt.target.id, _aliases(stmt.value), _names_in(stmt.annotation)))


def _env_prefix(config: ast.AST | None) -> str | None:
    """env_prefix of `SettingsConfigDict(env_prefix=...)` or of a dict literal; None when it sets none."""
    if isinstance(config, ast.Call):
        return next((_const_str(kw.value) for kw in config.keywords if kw.arg == "env_prefix"), None)
    if isinstance(config, ast.Dict):
        pairs = zip(config.keys, config.values, strict=True)
        return next((_const_str(v) for k, v in pairs if _const_str(k) == "env_prefix"), None)
    return None


def _aliases(value: ast.AST | None) -> list[str]:
    """Environment names a pydantic Field reads instead of prefix + field name (alias / validation_alias)."""
    if _call_name(value) != "Field":
        return []
    out: list[str] = []
    for kw in value.keywords:  # type: ignore[union-attr]
        if kw.arg in ("alias", "validation_alias"):
            if name := _const_str(kw.value):
                out.append(name)
            elif _call_name(kw.value) == "AliasChoices":
                out += [n for a in kw.value.args if (n := _const_str(a))]  # type: ignore[attr-defined]
    return out


def env_vars_read(sources: Iterable[str]) -> set[str]:
    """SHOP_* names that Python sources read: string literals naming a variable, and the fields of pydantic settings
    classes (env_prefix + field name, or the field's alias), nested settings classes excluded (they are read field by
    field)."""
    found: set[str] = set()
    classes: dict[str, _SettingsClass] = {}
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if (text := _const_str(node)) and ENV_NAME.fullmatch(text):
                found.add(text)
            elif isinstance(node, ast.ClassDef):
                classes[node.name] = _SettingsClass(node)

    def is_settings(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "BaseSettings":
            return True
        cls = classes.get(name)
        return cls is not None and name not in seen and any(is_settings(b, seen | {name}) for b in cls.bases)

    def prefix_of(name: str) -> str:
        cls = classes.get(name)
        if cls is None:
            return ""
        if cls.prefix is not None:
            return cls.prefix
        return next((p for b in cls.bases if (p := prefix_of(b))), "")

    settings = {name for name in classes if is_settings(name)}
    for name in settings:
        prefix = prefix_of(name)
        for field, aliases, annotation in classes[name].fields:
            if annotation & settings:
                continue
            found.update(aliases or [(prefix + field).upper()])
    return {n for n in found if ENV_NAME.fullmatch(n)}


def test_env_scan_reads_settings_classes_and_literals() -> None:
    source = """
class Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_")
    max_in_flight: int = Field(16, ge=1)

class Addresses(BaseSettings):
    gateway: str = Field("127.0.0.1:50051", validation_alias="SHOP_GATEWAY_ADDR")
    other: str = Field("", validation_alias=AliasChoices("SHOP_OTHER_ADDR", "SHOP_OLD_ADDR"))

class Gateway(Base):
    addresses: Addresses = Field(default_factory=Addresses)
    events_dsn: str | None = Field(None, validation_alias="SHOP_EVENTS_DSN")
    mode: ClassVar[str] = "x"

class Events(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_EVENTS_")
    pool_max: int = 8

class Tracing(BaseSettings):
    model_config: ClassVar[SettingsConfigDict] = {"env_prefix": "SHOP_TRACING_"}
    dir: str = "build/traces"

class NotSettings:
    value: int = 1

threads = os.environ.get("SHOP_ORT_THREADS", "1")
"""
    assert env_vars_read([source]) == {
        "SHOP_MAX_IN_FLIGHT",
        "SHOP_GATEWAY_ADDR",
        "SHOP_OTHER_ADDR",
        "SHOP_OLD_ADDR",
        "SHOP_EVENTS_DSN",
        "SHOP_EVENTS_POOL_MAX",
        "SHOP_TRACING_DIR",
        "SHOP_ORT_THREADS",
    }


def _section(text: str, heading: str) -> str:
    """The body of the `## heading...` section (up to the next heading of level 1 or 2)."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def _first_cells(section: str) -> list[str]:
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [row.split("|")[1] for row in rows[2:]]  # skip the header and the |---| line


def test_configuration_table_lists_exactly_the_variables_the_code_reads() -> None:
    documented = {
        name
        for cell in _first_cells(_section(README.read_text(encoding="utf-8"), "Configuration"))
        for name in ENV_NAME.findall(cell)
    }
    read = env_vars_read(p.read_text(encoding="utf-8") for p in _python_files())
    assert len(read) > 20, f"the scan found too few variables to be right: {sorted(read)}"
    assert not read - documented, f"read by the code, not in README's configuration table: {sorted(read - documented)}"
    assert not documented - read, f"in README's configuration table, read by no code: {sorted(documented - read)}"


def test_command_table_lists_every_makefile_target() -> None:
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    listed = {
        m
        for cell in _first_cells(_section(README.read_text(encoding="utf-8"), "Commands"))
        for m in re.findall(r"make ([a-z][a-z0-9-]*)", cell)
    }
    assert {"run", "test"} <= targets
    assert not targets - listed, f"Makefile targets missing from README's command table: {sorted(targets - listed)}"
    assert not listed - targets, f"README's command table names targets the Makefile lacks: {sorted(listed - targets)}"


def _doc_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading).strip().lower()).replace(
        " ", "-"
    )


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M)}


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in _doc_files():
        text = INLINE_CODE.sub("", FENCE.sub("", doc.read_text(encoding="utf-8")))
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            path = (doc.parent / file_part).resolve() if file_part else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


REPO_DIRS = (*CODE_DIRS, "tests", "protos", "triton_models", "reports", "docs")


def test_repository_paths_named_in_docs_exist() -> None:
    """A module or file the docs name in backticks (e.g. `libs/fusion.py`) exists: renames reach the docs."""
    missing = []
    for doc in _doc_files():
        for name in re.findall(r"`([^`\s]+)`", doc.read_text(encoding="utf-8")):
            if (
                name.split("/")[0] in REPO_DIRS
                and "/" in name
                and not re.search(r"[<*{]", name)
                and not name.startswith("libs/gen")
                and not (ROOT / name.rstrip("/")).exists()
            ):
                missing.append(f"{doc.relative_to(ROOT)}: {name}")
    assert not missing, "paths the docs name that do not exist:\n" + "\n".join(missing)


def test_docs_exist_and_readme_is_short() -> None:
    for name in ("architecture", "api", "operations", "results", "reliability", "experiments"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md is missing"
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_nothing_points_at_the_design_outside_the_repository() -> None:
    """The design is docs/architecture.md; a clone has no design document outside the repository to follow."""
    outside = "ARCHITECTURE" + ".md"  # spelt in two parts so that this file does not match itself
    texts = [*_doc_files(), ROOT / "Makefile", *ROOT.glob("*/README.md")]
    for folder in (*CODE_DIRS, "tests"):
        texts += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.suffix in (".py", ".md", ".yaml", ".sh", ".txt") and GENERATED not in p.parents
        ]
    citing = sorted(str(p.relative_to(ROOT)) for p in texts if outside in p.read_text(encoding="utf-8"))
    assert not citing, f"these cite {outside}, which is outside the repository: {citing}"
