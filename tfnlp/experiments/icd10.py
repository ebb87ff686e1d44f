"""ICD-10 coding experiments on the French WHO labels (`cim10`) by default."""

from __future__ import annotations

import dataclasses

from tfnlp.config import DataConfig, Experiment, TrainConfig
from tfnlp.experiments.registry import EXPERIMENTS
from tfnlp.model_settings import ModelSettings, Seq2SeqCoderSettings, settings

TINY_DATA = DataConfig(max_records=600)
TINY_TRAIN = TrainConfig(epochs=1, batch_size=32, patience=1)


@EXPERIMENTS.register()
def icd10_seq2seq(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 code, character by character: BiLSTM encoder, Bahdanau attention, LSTM decoder.

    python -m tfnlp.train icd10_seq2seq
    """
    if tiny:
        model = Seq2SeqCoderSettings(vocab_size=2000, embedding_dim=16, subword_buckets=500, units=16,
                                     decoder_units=32, char_embedding_dim=8, attention_units=16, beam_size=2,
                                     top_k=2)
        return Experiment("icd10_seq2seq", "seq2seq", "tiny icd10_seq2seq", TINY_DATA, model, TINY_TRAIN)
    return Experiment("icd10_seq2seq", "seq2seq", icd10_seq2seq.__doc__.splitlines()[0], DataConfig(),
                      Seq2SeqCoderSettings())


CLASSIFIER_TRAIN = TrainConfig(epochs=10, batch_size=64, learning_rate=2e-3, patience=3, monitor="val_accuracy")
TINY_CLASSIFIER_TRAIN = TrainConfig(epochs=1, batch_size=32, patience=1, monitor="val_accuracy")
# The tiny twin of any classifier: the values its family reads of these.
TINY_CLASSIFIER = {"vocab_size": 2000, "embedding_dim": 16, "units": 16, "filters": 16, "hidden_units": 16,
                   "max_input_tokens": 24}


def classifier(name: str, description: str, model: ModelSettings, label_length: int, tiny: bool,
               data: DataConfig | None = None) -> Experiment:
    """A classification experiment: `model` (or its tiny twin) on `data` with targets cut to `label_length`."""
    if tiny:
        fields = type(model).fields()
        model = dataclasses.replace(model, **{key: value for key, value in TINY_CLASSIFIER.items() if key in fields})
    data = data or DataConfig()
    data = dataclasses.replace(TINY_DATA if tiny else data, source=data.source, label_length=label_length)
    return Experiment(name, "classification", description, data, model,
                      TINY_CLASSIFIER_TRAIN if tiny else CLASSIFIER_TRAIN)


@EXPERIMENTS.register()
def icd10_chapter_lstm(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 chapter letter: TextVectorization, embedding, LSTM with dropout.

    python -m tfnlp.train icd10_chapter_lstm
    """
    model = settings("lstm", embedding_dim=128, units=128, dropout=0.3)
    return classifier("icd10_chapter_lstm", icd10_chapter_lstm.__doc__.splitlines()[0], model, 1, tiny)


@EXPERIMENTS.register()
def icd10_code_bilstm_conv(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 category (3 characters; data.label_length=4: code): BiLSTM + Conv1D, words and char n-grams.

    python -m tfnlp.train icd10_code_bilstm_conv
    """
    # Character n-grams chosen by 4-fold cross-validation on the training and validation texts (docs/results.md):
    # most category labels are rare words and inflections that a word vocabulary of 10,495 labels sees once or never.
    model = settings("bilstm_conv", embedding_dim=128, units=128, filters=256, dropout=0.3, subword_buckets=20000)
    return classifier("icd10_code_bilstm_conv", icd10_code_bilstm_conv.__doc__.splitlines()[0], model, 3, tiny)


@EXPERIMENTS.register()
def icd10_glove_logreg(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 chapter: mean of French static word vectors, logistic regression (scikit-learn).

    python -m tfnlp.train icd10_glove_logreg
    """
    model = settings("mean_vectors_linear", vocab_size=50000, vectors="fr-vectors")
    return classifier("icd10_glove_logreg", icd10_glove_logreg.__doc__.splitlines()[0], model, 1, tiny)


@EXPERIMENTS.register()
def icd10_glove_mlp(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 chapter: mean of French static word vectors, MLP (scikit-learn).

    python -m tfnlp.train icd10_glove_mlp
    """
    model = settings("mean_vectors_mlp", vocab_size=50000, hidden_units=256, vectors="fr-vectors")
    return classifier("icd10_glove_mlp", icd10_glove_mlp.__doc__.splitlines()[0], model, 1, tiny)


@EXPERIMENTS.register()
def icd10_glove_bilstm(tiny: bool = False) -> Experiment:
    """Text -> ICD-10 chapter: BiLSTM + Conv1D on frozen French static word vectors.

    python -m tfnlp.train icd10_glove_bilstm
    """
    model = settings("glove_bilstm", vocab_size=50000, units=128, filters=256, dropout=0.3, vectors="fr-vectors")
    return classifier("icd10_glove_bilstm", icd10_glove_bilstm.__doc__.splitlines()[0], model, 1, tiny)
