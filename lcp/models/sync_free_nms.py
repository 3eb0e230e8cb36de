"""mmcv's greedy NMS over fixed-size groups of candidates, returning keep masks instead of index lists.

mmcv's nms returns the kept indices with masked_select (its CUDA kernel scans the
suppression bitmask on the device, then reads the count back), and mmdet calls it behind
boolean filtering (min_bbox_size, score_thr) and one call per image: each a host sync.
Here candidates stay in fixed-size groups (a pyramid level, or a class, of one image) with
a validity mask, and greedy NMS is solved on the whole (group, candidate) grid at once:

  - each group is sorted by score (stable: equal scores keep their input order, where
    mmcv's unstable sort picks an arbitrary order);
  - `suppresses[g, a, b]`: candidate a comes before b and their IoU is above the threshold,
    with mmcv's formula for the device (its CPU kernel divides, its CUDA kernel multiplies);
  - greedy NMS keeps a candidate iff no kept candidate before it suppresses it. That is
    decided in rounds (Blelloch, Fineman and Shun's parallel greedy MIS): a candidate whose
    earlier neighbours are all decided is kept, and the candidates it suppresses are
    dropped. Every round decides at least the first undecided candidate of each group, so
    the rounds end with exactly the greedy result; their number is the depth of the
    suppression chains (a few on real detections, up to half the group when every box
    overlaps its successor along a chain).

Greedy NMS is inherently sequential (P-complete), so the number of rounds depends on the
data: the rounds run in blocks of `rounds_per_check`, and after each block one boolean
(is anything still undecided, in any group?) is read back. That is one host sync per call
for all images, levels and classes of a batch when the chains are shorter than a block.
"""

from __future__ import annotations

import numpy as np
import torch

ROUNDS_PER_CHECK = 8
SUPPORTED_NMS_KEYS = {"type", "iou_threshold", "offset"}


def check_nms_cfg(nms_cfg) -> tuple[float, int]:
    """(iou_threshold, offset) of an mmcv batched_nms config of type 'nms'; anything else is refused."""
    unsupported = set(nms_cfg) - SUPPORTED_NMS_KEYS
    if nms_cfg.get("type", "nms") != "nms" or unsupported or nms_cfg.get("class_agnostic"):
        raise ValueError(
            f"the sync-free NMS computes mmcv's plain per-group 'nms' (iou_threshold, offset); not {dict(nms_cfg)}"
        )
    return float(nms_cfg["iou_threshold"]), int(nms_cfg.get("offset", 0))


def with_group_offsets(boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """mmcv batched_nms's boxes_for_nms: group g of each image shifted by g * (largest valid coordinate + 1).

    boxes (B, G, K, 4), valid (B, G, K). The shift keeps groups apart; it is applied here too
    because it changes the IoUs' rounding, and so, rarely, a decision at the threshold.
    """
    largest = torch.where(valid[..., None], boxes, -torch.inf).amax(dim=(1, 2, 3))
    largest = torch.where(torch.isfinite(largest), largest, 0)  # no valid box: nothing to keep apart
    groups = torch.arange(boxes.size(1), device=boxes.device).to(boxes.dtype)
    offsets = groups[None, :] * (largest[:, None] + 1)
    return boxes + offsets[:, :, None, None]


def pairwise_suppression(boxes: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """(G, K, K) bool: candidate a suppresses b (a < b in each group's order) as mmcv's nms kernel decides it."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    width = (
        torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(x1[:, :, None], x1[:, None, :]) + offset
    ).clamp(min=0)
    height = (
        torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(y1[:, :, None], y1[:, None, :]) + offset
    ).clamp(min=0)
    inter = width * height
    union = areas[:, :, None] + areas[:, None, :] - inter
    if boxes.is_cuda:  # mmcv's devIoU
        overlaps = inter > iou_threshold * union
    else:  # mmcv's nms_cpu
        overlaps = inter / union > iou_threshold
    return overlaps.triu(diagonal=1)  # only an earlier candidate suppresses a later one


def greedy_keep(
    suppresses: torch.Tensor, candidates: torch.Tensor, rounds_per_check: int = ROUNDS_PER_CHECK
) -> torch.Tensor:
    """Greedy NMS keep mask (G, K) of the candidates, each group in its order, given `suppresses` (G, K, K)."""
    # "does any marked candidate suppress b" as a batched vector-matrix product: BLAS, no (G, K, K) temporary;
    # the sums are counts of ones, so even half precision keeps every positive one positive
    weights = suppresses.to(torch.float16 if suppresses.is_cuda else torch.float32)

    def suppressed_by(marked):
        return torch.bmm(marked.to(weights.dtype).unsqueeze(1), weights).squeeze(1) > 0

    undecided = candidates.clone()
    kept = torch.zeros_like(candidates)
    for _ in range(candidates.size(1)):  # the bound is never reached: see the check below
        for _ in range(rounds_per_check):
            # for booleans a > b is a & ~b
            newly_kept = undecided > suppressed_by(undecided)
            kept |= newly_kept
            # undecided candidates never have a kept one before them: each round drops what it keeps suppresses
            undecided = undecided > (newly_kept | suppressed_by(newly_kept))
        if not undecided.any():  # the one host read-back per block of rounds
            break
    return kept


def grouped_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    iou_threshold: float,
    offset: int = 0,
    rounds_per_check: int = ROUNDS_PER_CHECK,
) -> torch.Tensor:
    """mmcv's nms within each group of fixed-size candidates, as a keep mask in the input positions.

    boxes (G, K, 4) (already shifted as mmcv's batched_nms shifts them), scores and valid
    (G, K); invalid candidates are neither kept nor suppress anything.
    """
    if boxes.size(1) == 0:
        return valid.clone()
    order = torch.where(valid, scores, -torch.inf).sort(dim=1, descending=True, stable=True).indices
    sorted_boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
    suppresses = pairwise_suppression(sorted_boxes, iou_threshold, offset)
    kept_sorted = greedy_keep(suppresses, valid.gather(1, order), rounds_per_check)
    return torch.zeros_like(valid).scatter(1, order, kept_sorted)


def top_kept(keys: torch.Tensor, keep: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `num` highest kept keys of each row (B, M) in mmdet's order (score, then position; stable):
    (indices (B, num), present (B, num)); rows with fewer kept entries end with absent slots."""
    num = min(num, keys.size(1)) if num > 0 else keys.size(1)
    masked = torch.where(keep, keys, -torch.inf)
    ranked, indices = masked.sort(dim=1, descending=True, stable=True)
    return indices[:, :num], ranked[:, :num] > -torch.inf


def multiclass_nms_slots(
    multi_bboxes: torch.Tensor,
    multi_scores: torch.Tensor,
    present: torch.Tensor,
    score_thr: float,
    nms_cfg,
    max_num: int = -1,
    rounds_per_check: int = ROUNDS_PER_CHECK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mmdet's multiclass_nms for a batch of images in fixed slots.

    multi_bboxes (B, N, 4) or (B, N, C * 4), multi_scores (B, N, C + 1) (background last),
    present (B, N): the RoIs that exist. Returns detections (B, M, 5), labels (B, M) and
    the mask (B, M) of the slots holding one: mmdet's detections of each image, in its order
    (score, then RoI, then class), M = max_num (all candidates when max_num <= 0).
    """
    iou_threshold, offset = check_nms_cfg(nms_cfg)
    num_imgs, num_rois = multi_scores.shape[:2]
    num_classes = multi_scores.size(2) - 1
    if multi_bboxes.size(-1) > 4:
        boxes = multi_bboxes.view(num_imgs, num_rois, num_classes, 4)
    else:
        boxes = multi_bboxes[:, :, None].expand(-1, -1, num_classes, -1)
    scores = multi_scores[..., :num_classes]
    candidates = (scores > score_thr) & present[..., None]

    # one NMS group per image and class, as batched_nms separates the labels
    class_boxes = with_group_offsets(boxes.transpose(1, 2), candidates.transpose(1, 2))
    keep = grouped_nms(
        class_boxes.flatten(0, 1),
        scores.transpose(1, 2).flatten(0, 1),
        candidates.transpose(1, 2).flatten(0, 1),
        iou_threshold,
        offset,
        rounds_per_check,
    )
    keep = keep.view(num_imgs, num_classes, num_rois).transpose(1, 2).reshape(num_imgs, -1)
    scores = scores.reshape(num_imgs, -1)
    top, found = top_kept(scores, keep, max_num)
    det_boxes = boxes.reshape(num_imgs, -1, 4).gather(1, top[..., None].expand(-1, -1, 4))
    detections = torch.cat([det_boxes, scores.gather(1, top)[..., None]], dim=-1)
    return detections, top % num_classes, found


def slots_to_results(
    detections: torch.Tensor, labels: torch.Tensor, found: torch.Tensor, num_classes: int
) -> list[list[np.ndarray]]:
    """mmdet's bbox2result for every image of a batch of detection slots, in one device-to-host transfer."""
    packed = torch.cat([detections.float(), labels[..., None].float(), found[..., None].float()], dim=-1)
    results = []
    for image in packed.detach().cpu().numpy():  # a test outside no_grad: as mmdet's bbox2result
        image = image[image[:, 6] > 0]
        image_labels = image[:, 5].astype(np.int64)
        results.append([image[image_labels == i, :5] for i in range(num_classes)])
    return results
