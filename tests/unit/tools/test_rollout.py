"""tools.rollout: which bundle a rollout targets, and where it finds the stack `make run` serves."""

import json
from pathlib import Path

import pytest

from libs.bundles import Bundle, BundleError
from tools import rollout


def _bundle(number: int, parent: str | None = None) -> Bundle:
    bid = f"b{number:04d}-20261201T000000Z"
    return Bundle(bid, Path(bid), {"id": bid, "number": number, "parent": parent, "models": {}})


def test_default_target_is_the_newest_bundle_and_rollback_the_parent():
    one, two, three = _bundle(1), _bundle(2, "b0001-20261201T000000Z"), _bundle(3, "b0002-20261201T000000Z")
    assert rollout.pick_target(two, [one, two, three], None, False) == three.id
    assert rollout.pick_target(two, [one, two, three], None, True) == one.id
    assert rollout.pick_target(three, [one, two, three], one.id, False) == one.id
    with pytest.raises(BundleError, match="already the newest"):
        rollout.pick_target(three, [one, two, three], None, False)
    with pytest.raises(BundleError, match="no parent"):
        rollout.pick_target(one, [one], None, True)


def test_the_running_stack_is_read_from_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(rollout, "RUNNING", tmp_path / "stack.json")
    assert rollout.running_stack() == {}
    (tmp_path / "stack.json").write_text(json.dumps({"triton": "127.0.0.1:1"}))
    assert rollout.running_stack() == {"triton": "127.0.0.1:1"}
