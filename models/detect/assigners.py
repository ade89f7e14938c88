"""Which feature-map locations learn which ground-truth box (positive samples for the detector's loss).

``centre``: static centre sampling (FCOS): every location inside a box and within 2.5 strides of its centre,
the smaller box winning ties; each box keeps at least its nearest stride-8 location.

``simota``: dynamic assignment (YOLOX's SimOTA): among the same candidate locations, each box takes the ``k``
locations whose current predictions fit it best (cost = classification BCE + 3 x -log IoU), ``k`` being the
rounded sum of its 10 best IoUs, so a box the network already localises well gets more positives and a
small box is not starved by the static rule (a 10 px fruit holds one or two stride-8 cells). A location
claimed by two boxes goes to the cheaper one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.detect.net import STRIDES

ASSIGNERS = ("centre", "simota")


def candidates(points: torch.Tensor, strides: torch.Tensor, gt: torch.Tensor, radius: float = 2.5,
               fine_stride: float = float(STRIDES[0])) -> torch.Tensor:
    """(N, G) bool: location inside box g and near its centre, on a level that suits the box size."""
    px, py = points[:, 0:1], points[:, 1:2]
    inside = (px > gt[:, 0]) & (px < gt[:, 2]) & (py > gt[:, 1]) & (py < gt[:, 3])
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
    r = radius * strides[:, None]
    centre = ((px - cx).abs() < r) & ((py - cy).abs() < r)
    side = torch.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
    level_ok = (strides[:, None] < 1.5 * fine_stride) | (side[None, :] >= 2 * strides[:, None])
    cand = inside & centre & level_ok
    fine = strides == fine_stride
    d = (px - cx) ** 2 + (py - cy) ** 2
    d[~fine] = float("inf")
    cand[d.argmin(0), torch.arange(gt.shape[0])] = True  # every box keeps its nearest stride-8 location
    return cand


def centre_assign(points: torch.Tensor, strides: torch.Tensor, gt: torch.Tensor, radius: float = 2.5
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre sampling: (positive mask (N,), box index (N,)); ties go to the smaller box."""
    n = points.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long)
    cand = candidates(points, strides, gt, radius)
    area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :].expand(n, -1).clone()
    area[~cand] = float("inf")
    best_area, idx = area.min(1)
    return torch.isfinite(best_area), idx


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M,4) x (G,4) xyxy -> (M,G) IoU."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


@torch.no_grad()
def simota_assign(points: torch.Tensor, strides: torch.Tensor, gt: torch.Tensor, gt_labels: torch.Tensor,
                  pred_boxes: torch.Tensor, pred_logits: torch.Tensor, radius: float = 2.5, top_iou: int = 10
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic-k assignment from the current predictions of one image: (positive mask (N,), box index (N,))."""
    n = points.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long)
    cand = candidates(points, strides, gt, radius)
    rows = cand.any(1).nonzero()[:, 0]
    c = cand[rows]  # (M, G)
    iou = pairwise_iou(pred_boxes[rows].float(), gt)
    prob = pred_logits[rows][:, gt_labels].float().sigmoid()  # (M, G): score of each box's class
    cls_cost = F.binary_cross_entropy(prob, torch.ones_like(prob), reduction="none")
    cost = cls_cost + 3.0 * -torch.log(iou + 1e-8) + 1e5 * (~c)
    k = torch.clamp(torch.topk(iou * c, min(top_iou, len(rows)), 0).values.sum(0).int(), min=1)
    match = torch.zeros_like(c)
    for g in range(gt.shape[0]):
        kk = int(min(k[g], int(c[:, g].sum())))
        match[torch.topk(cost[:, g], max(kk, 1), largest=False).indices, g] = True
    match &= c
    multi = match.sum(1) > 1  # a location claimed by several boxes goes to the cheapest of them
    if multi.any():
        best = cost[multi].masked_fill(~match[multi], float("inf")).argmin(1)
        match[multi] = False
        match[multi.nonzero()[:, 0], best] = True
    # A box left with nothing takes its cheapest candidate that is free or whose owner keeps others; failing
    # that, its cheapest one (the robbed box then gets a turn). Bounded: two boxes may share a single cell.
    for _ in range(2 * gt.shape[0]):
        empty = (~match.any(0)).nonzero()[:, 0]
        if not len(empty):
            break
        g = int(empty[0])
        owners = match.float().argmax(1)
        spare = c[:, g] & (~match.any(1) | (match.sum(0)[owners] > 1))
        pick = cost[:, g].masked_fill(~spare, float("inf")).argmin() if spare.any() else cost[:, g].argmin()
        match[pick] = False
        match[pick, g] = True
    pos = torch.zeros(n, dtype=torch.bool)
    idx = torch.zeros(n, dtype=torch.long)
    hit = match.any(1)
    pos[rows[hit]] = True
    idx[rows[hit]] = match[hit].float().argmax(1)
    return pos, idx
