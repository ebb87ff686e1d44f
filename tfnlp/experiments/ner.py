"""Named-entity tagging experiments: WNUT16 tweets (the embedded default) or your CoNLL / PubTator data.

    python -m tfnlp.train ner_bilstm --data conll:../shared/data/ncbi-disease/conll
    python -m tfnlp.train ner_bilstm --data pubtator:../shared/data/ncbi-disease/pubtator
"""

from __future__ import annotations

from tfnlp.config import DataConfig, Experiment, TrainConfig
from tfnlp.experiments.registry import EXPERIMENTS
from tfnlp.model_settings import settings


@EXPERIMENTS.register()
def ner_bilstm(tiny: bool = False) -> Experiment:
    """Tokens -> BIO tags: GloVe-started word embedding + character CNN, BiLSTM, CRF (the fast tagger).

    python -m tfnlp.train ner_bilstm
    """
    if tiny:
        return Experiment("ner_bilstm", "tagging", "tiny ner_bilstm", DataConfig(source="wnut16", max_records=300),
                          settings("bilstm_tagger", vocab_size=2000, embedding_dim=16, units=16, dropout=0.2,
                                   decoder="crf", char_filters=8, char_embedding_dim=8),
                          TrainConfig(epochs=1, batch_size=32, patience=1, monitor="val_entity_f1"))
    # Character CNN (30-wide characters, 50 filters of 3) and CRF as in BiLSTM-CNN-CRF taggers; words start from
    # the packaged GloVe vectors. Chosen on NCBI disease's devel split (README > Results > taggers).
    return Experiment("ner_bilstm", "tagging", ner_bilstm.__doc__.splitlines()[0], DataConfig(source="wnut16"),
                      settings("bilstm_tagger", vocab_size=30000, embedding_dim=50, units=128, dropout=0.3,
                               vectors="glove-6b-50d", decoder="crf", char_filters=50, char_embedding_dim=30),
                      TrainConfig(epochs=15, batch_size=32, learning_rate=2e-3, patience=4, monitor="val_entity_f1"))


@EXPERIMENTS.register()
def ner_bert(tiny: bool = False) -> Experiment:
    """Tokens -> BIO tags: frozen keras-hub BERT's last 4 layers (minilm) + GloVe + character CNN, BiLSTM, CRF.

    python -m tfnlp.train ner_bert --data conll:../shared/data/ncbi-disease/conll
    """
    if tiny:
        return Experiment("ner_bert", "tagging", "tiny ner_bert", DataConfig(source="wnut16", max_records=200),
                          settings("bert_tagger", max_input_tokens=32, dropout=0.1, decoder="constrained"),
                          TrainConfig(epochs=1, batch_size=16, learning_rate=1e-4, patience=1,
                                      monitor="val_entity_f1"))
    # The BiLSTM-CNN-CRF tagger reading the frozen backbone's last four layers beside its words: chosen on NCBI
    # disease's devel split over fine-tuning the backbone (README > Results > taggers). all-MiniLM-L6-v2 was trained
    # for sentence embeddings: its lower layers keep more of each token than its last.
    return Experiment("ner_bert", "tagging", ner_bert.__doc__.splitlines()[0], DataConfig(source="wnut16"),
                      settings("bert_tagger", max_input_tokens=128, dropout=0.3, decoder="crf", freeze_backbone=True,
                               backbone_layers=4, lstm_units=128, char_filters=50, char_embedding_dim=30,
                               vectors="glove-6b-50d"),
                      TrainConfig(epochs=12, batch_size=32, learning_rate=2e-3, patience=4, monitor="val_entity_f1"))


@EXPERIMENTS.register()
def ner_gpt(tiny: bool = False) -> Experiment:
    """Tokens -> BIO tags: a fresh keras-hub GPT-2 (causal, 4 layers) over a byte-level BPE learnt on the training text.

    python -m tfnlp.train ner_gpt --data conll:../shared/data/ncbi-disease/conll
    """
    if tiny:
        return Experiment("ner_gpt", "tagging", "tiny ner_gpt", DataConfig(source="wnut16", max_records=200),
                          settings("gpt_tagger", max_input_tokens=32, embedding_dim=32, num_layers=1, dropout=0.2,
                                   decoder="constrained"),
                          TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, patience=1,
                                      monitor="val_entity_f1"))
    return Experiment("ner_gpt", "tagging", ner_gpt.__doc__.splitlines()[0], DataConfig(source="wnut16"),
                      settings("gpt_tagger", max_input_tokens=128, embedding_dim=256, num_layers=4, dropout=0.1,
                               decoder="constrained"),
                      TrainConfig(epochs=15, batch_size=32, learning_rate=5e-4, patience=4, monitor="val_entity_f1"))
