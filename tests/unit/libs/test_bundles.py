"""Bundles: written whole or not at all, CURRENT switched atomically, numbers never reused."""

import json

import pytest

from libs.bundles import BundleError, current_id, list_bundles, load_bundle, set_current
from libs.rankers import specs
from training.bundles import next_number, write_bundle


def _files(tmp_path, tag):
    src = tmp_path / f"src-{tag}"
    src.mkdir()
    (src / "fusion.json").write_text(json.dumps({"tag": tag}))
    (src / "w.pt").write_bytes(tag.encode())
    return {"fusion.json": src / "fusion.json", "checkpoints/w.pt": src / "w.pt"}


def test_a_bundle_carries_one_id_its_versions_its_parent_and_the_hash_of_every_file(tmp_path):
    first = write_bundle(tmp_path, 1, _files(tmp_path, "one"), {"events": {"count": 0}}, parent=None)
    second = write_bundle(
        tmp_path, 2, _files(tmp_path, "two"), {"events": {"count": 7}}, parent=first.id, make_current=False
    )
    assert current_id(tmp_path) == first.id  # a new bundle is not served until rolled out
    assert second.versions == {name: "2" for name in specs()}
    assert second.parent == first.id and second.manifest["events"] == {"count": 7}
    assert set(second.manifest["files"]) == {"fusion.json", "checkpoints/w.pt"}
    assert (second.path / "checkpoints" / "w.pt").read_bytes() == b"two"
    set_current(tmp_path, second.id)
    assert load_bundle(tmp_path).id == second.id
    assert [b.id for b in list_bundles(tmp_path)] == [first.id, second.id]
    assert not list(tmp_path.glob("bundles/.*"))  # no staging dir or temporary pointer left behind


def test_an_incomplete_bundle_is_neither_listed_nor_made_current(tmp_path):
    bundle = write_bundle(tmp_path, 1, _files(tmp_path, "one"), {}, parent=None)
    (bundle.path / "checkpoints" / "w.pt").unlink()
    with pytest.raises(BundleError, match="incomplete"):
        load_bundle(tmp_path, bundle.id)
    with pytest.raises(BundleError):
        set_current(tmp_path, bundle.id)
    assert list_bundles(tmp_path) == []


def test_no_current_bundle_says_what_to_run(tmp_path):
    with pytest.raises(BundleError, match="make models"):
        load_bundle(tmp_path)


def test_the_next_number_is_past_every_bundle_and_every_triton_version_on_disk(tmp_path):
    repository = tmp_path / "repo"
    assert next_number(tmp_path, repository) == 1
    write_bundle(tmp_path, 1, _files(tmp_path, "one"), {}, parent=None)
    (repository / next(iter(specs())) / "3").mkdir(parents=True)  # a version left by a failed retrain
    assert next_number(tmp_path, repository) == 4


def test_rewind_serves_the_checkpoints_trained_before_a_date_and_says_so(tmp_path):
    """make loop-eval's frozen bundle: the refitted rankers swapped for the ones trained before the weeks aside."""
    from libs.rankers import names
    from training.bundles import rewind

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    files = {"fusion.json": models / "fusion.json"}
    (models / "fusion.json").write_text("{}")
    for name in names():
        for day in ("2011-10-28", "2011-11-11"):
            (models / "checkpoints" / f"{name}-{day}.pt").write_bytes(day.encode())
        files[f"checkpoints/{name}.pt"] = models / "checkpoints" / f"{name}-2011-11-11.pt"
    served = write_bundle(tmp_path, 1, files, {"data_cutoff": "2011-11-11 00:00:00", "events": {"count": 0}}, None)
    frozen = rewind(tmp_path, models, "2011-10-28")
    assert load_bundle(tmp_path).id == frozen.id and frozen.number == 1 and frozen.id != served.id
    assert frozen.manifest["data_cutoff"] == "2011-10-28 00:00:00" and frozen.manifest["rewound_from"] == served.id
    assert all((frozen.path / "checkpoints" / f"{n}.pt").read_bytes() == b"2011-10-28" for n in names())
    assert [b.id for b in list_bundles(tmp_path)] == [frozen.id]
    with pytest.raises(FileNotFoundError):
        rewind(tmp_path, models, "2011-01-01")


def test_the_listing_names_each_bundles_training_run(tmp_path, monkeypatch, capsys):
    """The manifest's `run` (runs/<run>, TensorBoard) is shown where the bundles are listed; older bundles: '-'."""
    from training import bundles

    old = write_bundle(tmp_path, 1, _files(tmp_path, "one"), {}, parent=None)
    new = write_bundle(tmp_path, 2, _files(tmp_path, "two"), {"run": "retrain-20261206T231500Z"}, parent=old.id)
    monkeypatch.setenv("SHOP_ARTIFACTS_DIR", str(tmp_path))
    assert bundles.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"  {old.id}  run=-  ")
    assert lines[1].startswith(f"* {new.id}  run=retrain-20261206T231500Z  parent={old.id}")
