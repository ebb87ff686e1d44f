"""The main job at full size (about 8 minutes here): opt in with `python -m pytest -m slow`."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_main_job_meets_its_targets(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfnlp.train", "icd10_seq2seq", "--workdir", str(tmp_path / "run"),
         "--export_base", str(tmp_path / "savedmodels")],
        capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == f"exported: {tmp_path / 'savedmodels' / 'icd10_seq2seq' / '1'}"
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert test["model_beam"]["exact_match"] >= 0.40
    # The export beats every baseline printed beside it on chapter and category.
    for baseline in ("baseline_tfidf_nn", "baseline_tfidf_linear"):
        for column in ("chapter_accuracy", "category_accuracy"):
            assert test["model_beam"][column] > test[baseline][column], (baseline, column)
