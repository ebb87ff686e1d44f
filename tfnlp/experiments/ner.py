"""Named-entity tagging experiments: WNUT16 tweets (the embedded default) or your CoNLL / PubTator data.

    python -m tfnlp.train ner_bilstm --data conll:../shared/data/ncbi-disease/conll
    python -m tfnlp.train ner_bilstm --data pubtator:../shared/data/ncbi-disease/pubtator
"""

from __future__ import annotations

from tfnlp.config import DataConfig, Experiment, ModelConfig, TrainConfig
from tfnlp.experiments import EXPERIMENTS


@EXPERIMENTS.register()
def ner_bilstm(tiny: bool = False) -> Experiment:
    """Tokens -> BIO tags: lower-cased word embedding, BiLSTM, softmax per token (the fast baseline).

    python -m tfnlp.train ner_bilstm
    """
    if tiny:
        return Experiment("ner_bilstm", "tagging", "tiny ner_bilstm", DataConfig(source="wnut16", max_records=300),
                          ModelConfig(name="bilstm_tagger", vocab_size=2000, embedding_dim=16, units=16),
                          TrainConfig(epochs=1, batch_size=32, patience=1, monitor="val_entity_f1"))
    return Experiment("ner_bilstm", "tagging", ner_bilstm.__doc__.splitlines()[0], DataConfig(source="wnut16"),
                      ModelConfig(name="bilstm_tagger", vocab_size=30000, embedding_dim=100, units=128, dropout=0.3),
                      TrainConfig(epochs=15, batch_size=32, learning_rate=2e-3, patience=4, monitor="val_entity_f1"))
