import zipfile
from pathlib import Path

import pytest

from tfnlp import assets
from tfnlp.errors import UserError
from tfnlp.registry import Registry


def make_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pkg/data/labels.po", "msgid \"\"\n")
        wheel.writestr("pkg/__init__.py", "raise RuntimeError('assets are never imported')\n")
    return path


@pytest.fixture
def registry(monkeypatch, tmp_path):
    monkeypatch.setenv("TFNLP_CACHE", str(tmp_path / "cache"))
    registry: Registry = Registry("asset")
    monkeypatch.setattr(assets, "ASSETS", registry)
    return registry


def test_a_pre_seeded_archive_is_checked_unpacked_once_and_never_imported(registry, tmp_path):
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    wheel = make_wheel(downloads / "pkg-1.0-py3-none-any.whl")
    registry.add("pkg", assets.Asset("pkg", "pkg==1.0", wheel.name, assets.sha256_of(wheel),
                                     ("pkg/data/*",), "MIT", "test"))
    folder = assets.fetch("pkg")
    assert (folder / "pkg/data/labels.po").exists()
    assert not (folder / "pkg/__init__.py").exists()  # only the listed members
    assert assets.find_file("pkg", "*/labels.po") == folder / "pkg/data/labels.po"
    wheel.unlink()  # a second fetch uses the cache, not the archive
    assert assets.fetch("pkg") == folder


def test_a_wrong_hash_is_refused(registry, tmp_path):
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    wheel = make_wheel(downloads / "pkg-1.0-py3-none-any.whl")
    registry.add("pkg", assets.Asset("pkg", "pkg==1.0", wheel.name, "0" * 64, ("*",), "MIT", "test"))
    with pytest.raises(UserError, match="has sha256 .* expected 0000"):
        assets.fetch("pkg")


def test_a_failed_download_names_the_package_and_how_to_pre_seed(registry, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    registry.add("ghost", assets.Asset("ghost", "tfnlp-no-such-package==0.0.1", "ghost.whl", "0" * 64,
                                       ("*",), "MIT", "test"))
    with pytest.raises(UserError) as error:
        assets.fetch("ghost")
    message = str(error.value)
    assert "tfnlp-no-such-package==0.0.1" in message and "127.0.0.1:9" in message
    assert "pre-seed" in message and "downloads" in message


def test_the_cli_lists_assets_and_rejects_unknown_names(capsys):
    assert assets.main(["list"]) == 0
    assert "cim10-fr" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        assets.main(["fetch", "no-such-asset"])
    assert exit_info.value.code == 2
    assert "unknown asset 'no-such-asset'" in capsys.readouterr().err


def registered_wheel(registry, tmp_path) -> Path:
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    wheel = make_wheel(downloads / "pkg-1.0-py3-none-any.whl")
    registry.add("pkg", assets.Asset("pkg", "pkg==1.0", wheel.name, assets.sha256_of(wheel), ("pkg/data/*",),
                                     "MIT", "test"))
    return wheel


@pytest.mark.parametrize("damage", ["cut short", "changed", "deleted"])
def test_a_damaged_unpacked_file_is_unpacked_again_with_a_warning(registry, tmp_path, monkeypatch, capsys, damage):
    registered_wheel(registry, tmp_path)
    labels = assets.fetch("pkg") / "pkg/data/labels.po"
    original = labels.read_bytes()
    if damage == "cut short":
        labels.write_bytes(original[:3])
    elif damage == "changed":
        labels.write_bytes(original.replace(b"msgid", b"msgXd"))  # same size, other bytes
    else:
        labels.unlink()
    monkeypatch.setattr(assets, "_verified", {})  # a new process
    assert assets.fetch("pkg") / "pkg/data/labels.po" == labels and labels.read_bytes() == original
    assert "unpacking it again from its archive" in capsys.readouterr().err


def test_an_old_marker_without_digests_is_unpacked_again(registry, tmp_path, monkeypatch):
    registered_wheel(registry, tmp_path)
    folder = assets.fetch("pkg")
    (folder / assets.COMPLETE_MARKER).write_text("0" * 64 + "\n")  # what tfnlp 0.1 wrote
    monkeypatch.setattr(assets, "_verified", {})
    assert assets.fetch("pkg") == folder and (folder / assets.COMPLETE_MARKER).read_text().startswith("{")


def test_a_cache_that_cannot_be_written_is_a_clear_error(registry, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("TFNLP_CACHE", str(a_file / "cache"))
    registry.add("pkg", assets.Asset("pkg", "pkg==1.0", "pkg.whl", "0" * 64, ("*",), "MIT", "test"))
    with pytest.raises(SystemExit) as exit_info:
        assets.main(["fetch", "pkg"])
    assert exit_info.value.code == 2 and "which is a file" in capsys.readouterr().err


def test_a_full_disk_while_unpacking_cleans_its_staging_and_says_how_much_to_free(registry, tmp_path, monkeypatch,
                                                                                  capsys):
    import errno

    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    wheel = make_wheel(downloads / "pkg-1.0-py3-none-any.whl")
    registry.add("pkg", assets.Asset("pkg", "pkg==1.0", wheel.name, assets.sha256_of(wheel),
                                     ("pkg/data/*",), "MIT", "test"))
    leftover = tmp_path / "cache" / "assets" / ".pkg-killed"
    leftover.mkdir(parents=True)  # what an unpacking killed an hour ago left
    import os
    import time

    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    real_unpack = assets._unpack

    def full_disk(*args):
        real_unpack(*args)  # the files land, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(assets, "_unpack", full_disk)
    with pytest.raises(UserError, match=r"no space left on device while unpacking asset 'pkg' .*; free \d+ MB"):
        assets.fetch("pkg")
    assert list((tmp_path / "cache" / "assets").iterdir()) == []  # neither the leftover nor this staging stays
    assert "left by an unpacking that did not finish" in capsys.readouterr().err
    monkeypatch.setattr(assets, "_unpack", real_unpack)
    assert (assets.fetch("pkg") / "pkg/data/labels.po").exists()  # space freed: the next run unpacks
