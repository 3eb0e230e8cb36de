"""Can the crux learner learn at all here? `lcp train` with the crux branch fed clean content.

In crux-mode training the crux branch normally sees crux_learner(img) = img * mask(img), and
its content reaches detection through the catch-up learner and the fusion. Here the branch
sees mask(img) * img_df instead, where img_df is the sample's own clean original
(`data.train.pairing=source`): the mask is still predicted from the low-quality image, but
what it lets through is the best content a catch-up learner could produce. Catch-up epochs
and evaluation are unchanged. Compare the crux learner's health lines in the log (mask mean,
spatial std) with an ordinary run: a mask that opens here but closes in the ordinary run
says the crux learner works and the catch-up branch's content is what it rejects.

    python bench/crux_clean_content.py train config/mmdet/lcp_tiny_demo.py --work-dir W \\
        --load-from results/demo/pretrain/latest.pth --cfg-options data.train.pairing=source ...

Every argument goes to `lcp` as it is, except a leading `--halves HALVES.json` (a scene of
`bench/half_fog.py data`): then the branch sees the clean original on each image's fogged half
and its negative on the clear half (in normalised units). At first order in the mask the two
push the detection loss by the same amount in opposite directions (the branch's input is
mask * content, so dL/dmask = <content, dL/dinput>), so what opening the mask gains on one half
it loses on the other, and the input shows which half is which (the fog). A crux
learner that can mark regions at all should open the mask on the fogged half and shut it on
the clear one; `bench/half_fog.py masks` measures both halves.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def half_content(img_df, img_metas, halves: dict[str, str]):
    """img_df on each image's fogged half, -img_df elsewhere (padding included)."""
    import torch
    from half_fog import half_mask, half_of

    fogged = torch.zeros(img_df.shape[0], 1, *img_df.shape[2:], dtype=torch.bool, device=img_df.device)
    for index, meta in enumerate(img_metas):
        height, width = meta["img_shape"][:2]
        flipped = bool(meta.get("flip")) and meta.get("flip_direction", "horizontal") == "horizontal"
        half = half_of(halves, meta["ori_filename"], Path(meta["filename"]))
        fogged[index, 0, :height, :width] = torch.from_numpy(half_mask((height, width), half, flipped))
    return torch.where(fogged, img_df, -img_df)


@contextlib.contextmanager
def clean_content(halves: dict[str, str] | None = None) -> Iterator[None]:
    """Within: LCPDetector's crux-mode training masks the clean original instead of its input
    (with `halves`, the clean original on the fogged half and its negative on the clear half)."""
    from lcp.models.detector import LCPDetector

    forward_train, extract_feat = LCPDetector.forward_train, LCPDetector.extract_feat

    def forward_train_keeping_df(self, img, img_metas, *args, img_df=None, **kwargs):
        self._clean_content = img_df if halves is None or img_df is None else half_content(img_df, img_metas, halves)
        try:
            return forward_train(self, img, img_metas, *args, img_df=img_df, **kwargs)
        finally:
            self._clean_content = None

    def extract_feat_from_clean(self, img):
        clean = getattr(self, "_clean_content", None)
        if clean is None:
            return extract_feat(self, img)
        x = self.backbone(img, self.crux_learner.mask(img) * clean)
        return self.neck(x) if self.with_neck else x

    LCPDetector.forward_train, LCPDetector.extract_feat = forward_train_keeping_df, extract_feat_from_clean
    try:
        yield
    finally:
        LCPDetector.forward_train, LCPDetector.extract_feat = forward_train, extract_feat


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from lcp.cli import main as lcp

    argv = sys.argv[1:] if argv is None else list(argv)
    halves = None
    if argv[:1] == ["--halves"]:
        sys.path.insert(0, str(ROOT / "bench"))
        from half_fog import read_halves

        halves, argv = read_halves(Path(argv[1])), argv[2:]
    if not any(arg.endswith("pairing=source") for arg in argv):
        print("crux_clean_content: pass --cfg-options data.train.pairing=source (img_df must be the clean original)")
        return 2
    with clean_content(halves):
        return lcp(argv)


if __name__ == "__main__":
    sys.exit(main())
