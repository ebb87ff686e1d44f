"""ICD-10 coding experiments on the French WHO labels (`cim10`) by default."""

from __future__ import annotations

from tfnlp.config import DataConfig, Experiment, ModelConfig, TrainConfig
from tfnlp.experiments import EXPERIMENTS

TINY_DATA = DataConfig(max_records=600)
TINY_TRAIN = TrainConfig(epochs=1, batch_size=32, patience=1)


@EXPERIMENTS.register()
def icd10_seq2seq(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 code, character by character: BiLSTM encoder, Bahdanau attention, LSTM decoder.

    python -m tfnlp.train icd10_seq2seq
    """
    if tiny:
        model = ModelConfig(vocab_size=2000, embedding_dim=16, subword_buckets=500, units=16, decoder_units=32,
                            char_embedding_dim=8, attention_units=16, beam_size=2)
        return Experiment("icd10_seq2seq", "seq2seq", "tiny icd10_seq2seq", TINY_DATA, model, TINY_TRAIN)
    return Experiment("icd10_seq2seq", "seq2seq", icd10_seq2seq.__doc__.splitlines()[0])
