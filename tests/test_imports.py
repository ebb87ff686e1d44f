"""The package's import structure: no two modules import each other, and the serving modules share `store`, not the
server (read from the source with `ast`, imports inside functions included)."""

import ast
from pathlib import Path

import tfnlp

PACKAGE = Path(tfnlp.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the tfnlp modules it imports (`from tfnlp.x import y` counts `tfnlp.x.y` when that is a module)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfnlp"):
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                          for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("tfnlp")}
        graph[name] = found - {name}
    return graph


def test_no_two_modules_import_each_other():
    graph = imports()
    mutual = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, ())})
    assert mutual == []


def test_only_the_entry_point_imports_the_server():
    importers = [name for name, targets in imports().items() if "tfnlp.serving.server" in targets]
    assert importers == []
    assert {"tfnlp.serving.store"} <= imports()["tfnlp.serving.rest"] & imports()["tfnlp.serving.batching"]
