"""The documentation tells the truth: its Python examples run (at tiny size), its commands exist, the README stays
short."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.parametrize("path", [path for path in PAGES if python_blocks(path)], ids=lambda path: path.name)
def test_python_examples_run_against_a_tiny_export(path, tiny_run, tmp_path, monkeypatch):
    import tfnlp.run
    from tfnlp.run import Run

    # The examples name savedmodels/icd10_seq2seq: here, the session's tiny coder; training returns its run.
    (tmp_path / "savedmodels").symlink_to(tiny_run["export_base"], target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tfnlp.run, "train", lambda *args, **kwargs: Run.load(tiny_run["workdir"]))
    for block in python_blocks(path):
        if "tf.saved_model.load" in block:
            block = block.replace("savedmodels/icd10_seq2seq/1", str(tiny_run["version"]))
        exec(compile(block, f"{path.name} example", "exec"), {})


def test_every_command_the_docs_name_exists():
    commands = {name for path in PAGES for name in re.findall(r"python -m (tfnlp(?:\.\w+)*)", path.read_text())}
    assert {"tfnlp.train", "tfnlp.predict", "tfnlp.serving.server", "tfnlp.pipeline"} <= commands
    assert [name for name in commands if importlib.util.find_spec(name) is None] == []


def test_the_readme_fits_on_two_screens_and_names_its_test_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "<!-- test-command -->" in text and "python -m pytest" in text
