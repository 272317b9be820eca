"""The package's import graph, counting imports inside functions too: no cycles, and no import up the stack (data
flows one way: ESCO -> taxonomy -> index -> tagger -> API/CLI/Spark)."""

import ast
from pathlib import Path

import escotag

ROOT = Path(escotag.__file__).parent
# bottom to top; a module may import from its own layer and the ones below (README, "How it works")
LAYERS = [
    {"errors", "settings", "storage", "metrics"},
    {"text"},
    {"esco"},
    {"encoders"},
    {"index"},
    {"heads"},
    {"tagging"},
    {"learn"},
    {"evaluation"},
    {"finetune"},
    {"batch", "review", "service", "spark", "cli", "__main__", ""},  # the front doors; "": escotag/__init__
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that this one imports, anywhere in it (its own parent packages left out)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name and not name.startswith(t + ".")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    known = _modules()
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert len(graph) > 40 and graph["escotag.tagging.tagger"]  # the package was read
    assert _cycle(graph) is None


def test_no_import_up_the_stack():
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    known = _modules()

    def level(module: str) -> int:
        return layer[module.split(".")[1] if "." in module else ""]

    assert {m.split(".")[1] for m in known if "." in m} <= set(layer), "a sub-package is missing from LAYERS"
    upward = [f"{name} -> {target}" for name, path in known.items() for target in _imports(name, path, known)
              if target != "escotag" and level(target) > level(name)]
    assert upward == []
