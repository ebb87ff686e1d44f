"""`python -m tfnlp.bench lora`: its table and its refusals (the runs themselves are tfnlp.train's, tested there)."""

import pytest

from tfnlp.bench import __main__ as bench
from tfnlp.bench.lora import table


def test_the_table_names_full_fine_tuning_and_each_rank():
    row = {"validation": 0.81, "score": 0.8, "trainable": 1200, "total": 23000, "train_seconds": 12.4,
           "peak_mb": 4000.2, "export_mb": 95.16}
    text = table({("ner_bert", 0): row, ("ner_bert", 8): {**row, "trainable": 30}})
    assert "| ner_bert (entity_f1) | full | 0.810 | 0.800 | 1,200 | 23,000 | 12 | 4000 | 95.2 |" in text
    assert "| ner_bert (entity_f1) | LoRA rank 8 | 0.810 | 0.800 | 30 |" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--ranks", "4,x"], "--ranks '4,x': comma-separated whole numbers"),
    (["--experiments", "ner_gpt"], "--experiments 'ner_gpt': choose among sentiment_bert, ner_bert"),
])
def test_bad_options_are_user_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(["lora", *argv])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_ner_bert_is_compared_in_its_fine_tuned_form():
    """ner_bert's defaults freeze the backbone (LoRA beside them is refused): the bench's rows fine-tune it."""
    from tfnlp.bench.lora import FINE_TUNED
    from tfnlp.config import apply_overrides
    from tfnlp.experiments import get

    for rank in (0, 8):
        model = apply_overrides(get("ner_bert"), [*FINE_TUNED["ner_bert"], f"model.lora_rank={rank}"]).model
        assert not model.freeze_backbone and model.lora_rank == rank
        assert (model.lstm_units, model.char_filters, model.vectors, model.backbone_layers) == (0, 0, "", 1)
