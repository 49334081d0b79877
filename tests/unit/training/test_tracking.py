"""Experiment tracking: a short training writes TensorBoard event files with the loss and the validation NDCG per
epoch and member (training/train/tracking.py), through the members' worker processes as `make models` runs them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tests.unit.features import synthetic
from training.train.data import build_examples
from training.train.tracking import LOSS, VALIDATION_NDCG, member_dir, new_run, read_scalars
from training.train.trainer import MemberJob, TrainConfig, score_catalogue, train_members


def test_short_training_writes_loss_and_validation_ndcg_per_epoch_and_member(tmp_path):
    from training.evaluate.metrics import ndcg_at_k

    examples = build_examples(synthetic.purchases(n_users=40), None, synthetic.item_embeddings(), synthetic.NOW, 3)
    store = synthetic.store()
    users = ["42", "1000", "1001", "1002"]
    truth = sp.csr_matrix(([1.0] * 4, ([0, 1, 2, 3], [7, 1, 2, 3])), shape=(len(users), synthetic.N_ITEMS))
    calls = []

    def validate(name, model):
        assert not model.training  # scored in eval mode (dropout off)
        calls.append(name)
        return ndcg_at_k(score_catalogue(name, model, store, users), truth)

    run = new_run("test")
    cfg = TrainConfig(epochs=2, dim=16, batch_size=8)
    descs = ["transformer_ranker seed 0 < 2011-06-01", "gnn_ranker seed 0 < 2011-06-01"]
    jobs = [MemberJob(d.split()[0], cfg, d, log_dir=member_dir(tmp_path, run, d)) for d in descs]
    trained = train_members(
        jobs, examples, synthetic.N_ITEMS, synthetic.item_embeddings(), progress=False, workers=2, validate=validate
    )

    assert run.startswith("test-") and sorted(p.name for p in (tmp_path / run).iterdir()) == [
        "gnn_ranker_seed_0_2011-06-01",
        "transformer_ranker_seed_0_2011-06-01",
    ]
    for job, (_, info) in zip(jobs, trained):
        assert list(job.log_dir.glob("events.out.tfevents.*"))
        scalars = read_scalars(job.log_dir)
        assert set(scalars) == {LOSS, VALIDATION_NDCG}
        assert [step for step, _ in scalars[LOSS]] == [1, 2] == [step for step, _ in scalars[VALIDATION_NDCG]]
        # The files hold what the training returned (float32 in the event file).
        np.testing.assert_allclose([v for _, v in scalars[LOSS]], info["loss_per_epoch"], rtol=1e-6)
        np.testing.assert_allclose(
            [v for _, v in scalars[VALIDATION_NDCG]], info["validation_ndcg20_per_epoch"], rtol=1e-6
        )
        assert all(0.0 <= v <= 1.0 for _, v in scalars[VALIDATION_NDCG])
    assert not calls  # validation ran in the forked workers, not here


def test_without_validation_only_the_loss_is_logged(tmp_path):
    examples = build_examples(synthetic.purchases(n_users=20), None, synthetic.item_embeddings(), synthetic.NOW, 2)
    job = MemberJob("gnn_ranker", TrainConfig(epochs=1, dim=16, batch_size=8), "g", log_dir=tmp_path / "g")
    ((_, info),) = train_members([job], examples, synthetic.N_ITEMS, synthetic.item_embeddings(), progress=False)
    assert "validation_ndcg20_per_epoch" not in info
    assert set(read_scalars(tmp_path / "g")) == {LOSS}
