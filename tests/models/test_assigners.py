"""Positive-sample assignment for the detector's loss (models/detect/assigners.py), on hand-made grids and boxes."""

from __future__ import annotations

import pytest
# the train extra is in the test environment (scripts/test.sh): a missing or broken torch fails, never skips
import torch

from models.detect.assigners import centre_assign, simota_assign
from models.detect.net import grid_points


def _grid(size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    p8, p16 = grid_points(size // 8, size // 8, 8), grid_points(size // 16, size // 16, 16)
    strides = torch.cat([torch.full((len(p8),), 8.0), torch.full((len(p16),), 16.0)])
    return torch.cat([p8, p16]), strides


def _boxes_at(points: torch.Tensor, half: float) -> torch.Tensor:
    return torch.cat([points - half, points + half], 1)


def test_centre_assign_covers_every_box_and_gives_overlaps_to_the_smaller_box() -> None:
    points, strides = _grid()
    big, small = torch.tensor([[10.0, 10.0, 90.0, 90.0]]), torch.tensor([[40.0, 40.0, 58.0, 58.0]])
    tiny = torch.tensor([[100.0, 100.0, 105.0, 105.0]])  # holds no cell centre: keeps its nearest stride-8 cell
    pos, idx = centre_assign(points, strides, torch.cat([big, small, tiny]))
    owned = {g: (pos & (idx == g)).nonzero()[:, 0] for g in range(3)}
    assert all(len(v) for v in owned.values())
    assert len(owned[2]) == 1 and strides[owned[2][0]] == 8 and points[owned[2][0]].tolist() == [100.0, 100.0]
    inside_small = (points[:, 0] > 40) & (points[:, 0] < 58) & (points[:, 1] > 40) & (points[:, 1] < 58)
    assert (idx[pos & inside_small & (strides == 8)] == 1).all()  # overlap: the smaller box wins
    assert not (pos & ~((points > 10) & (points < 90)).all(1) & (idx == 0)).any()  # only cells inside


def test_simota_gives_more_positives_to_a_box_the_net_already_fits() -> None:
    points, strides = _grid()
    gt = torch.tensor([[8.0, 8.0, 56.0, 56.0], [72.0, 72.0, 120.0, 120.0]])
    labels = torch.tensor([0, 1])
    pred = _boxes_at(points, 4.0)  # tiny predictions everywhere: poor IoU with both boxes
    near_first = ((points > 8) & (points < 56)).all(1)
    pred[near_first] = gt[0]  # ... except around box 0, where every cell predicts it exactly
    logits = torch.zeros(len(points), 2)
    pos, idx = simota_assign(points, strides, gt, labels, pred, logits)
    n0, n1 = int((pos & (idx == 0)).sum()), int((pos & (idx == 1)).sum())
    assert n0 == 10 and n1 == 1  # k = rounded sum of the 10 best IoUs: 10 x 1.0 vs ~10 x 0.03
    inside0 = ((points > 8) & (points < 56)).all(1)
    assert inside0[pos & (idx == 0)].all()


def test_simota_resolves_shared_locations_and_keeps_every_box() -> None:
    points, strides = _grid()
    # a small box holds one stride-8 cell (68, 68), which a bigger overlapping box (four cells) also wants
    gt = torch.tensor([[60.0, 60.0, 70.0, 70.0], [62.0, 62.0, 78.0, 78.0], [20.0, 20.0, 50.0, 50.0]])
    labels = torch.tensor([0, 0, 1])
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        pred = _boxes_at(points, 6.0) + torch.randn(len(points), 4, generator=gen)
        pos, idx = simota_assign(points, strides, gt, labels, pred, torch.randn(len(points), 2, generator=gen))
        assert set(idx[pos].tolist()) == {0, 1, 2}  # nobody is starved when a spare location exists
        assert idx[pos & (points == 68).all(1) & (strides == 8)].tolist() == [0]
    assert simota_assign(points, strides, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), pred,
                         torch.zeros(len(points), 2))[0].sum() == 0


def test_unknown_assigner_is_a_clear_error() -> None:
    from models.detect.train import compute_loss

    with pytest.raises(ValueError, match="unknown assigner 'atss'"):
        compute_loss([], [], "atss")
