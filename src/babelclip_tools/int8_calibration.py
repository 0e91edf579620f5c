"""Build babel-lite's shipped int8 numerics: activation ranges and GPTQ-rounded weights.

``babelclip-tools int8 --write`` (about a minute) writes ``image_int8.json`` (each activation's
range, the mean over calibration batches of each batch's minimum and maximum) and
``image_int8_weights.safetensors`` (:mod:`.gptq`), from a fixed calibration set: every 8th Tux
Paint stamp and the scikit-image sample photos. The runtime that reads both files is
:mod:`babelclip.models.babel_lite.image_quant`; nothing here is imported at inference.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import torch

from babelclip.models.babel_lite.image_quant import (
    FORMAT,
    INPUT_RANGE,
    RANGES_FILE,
    WEIGHTS_FILE,
    activation_names,
)
from babelclip.models.babel_lite.image_tower import (
    ImagePreprocess,
    LiteClassifier,
    load_efficientnet_lite0,
)
from babelclip.models.babel_lite.weights import WEIGHT_FILES

from .gptq import gptq_round, input_moments

log = logging.getLogger(__name__)


def _observed_modules(model: LiteClassifier) -> dict[str, torch.nn.Module]:
    """Activation name → the float module whose output is that activation."""
    mods: dict[str, torch.nn.Module] = {"stem": model.stem_act, "head": model.head_act}
    for i, blk in enumerate(model.blocks):
        if blk.expand is not None:
            mods[f"blocks.{i}.expand"] = blk.expand_act
        mods[f"blocks.{i}.depthwise"] = blk.depthwise_act
        mods[f"blocks.{i}.project"] = blk.project
        if blk.residual:
            mods[f"blocks.{i}.add"] = blk
    return mods


def calibrate(model: LiteClassifier, batches: Iterable[torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Run float batches through ``model`` and return each activation's range.

    The range is the mean over batches of each batch's minimum and maximum (the estimate of
    PyTorch's moving-average min/max observer, with equal weights): less sensitive to one
    outlier image than the global extremes. Every range contains 0, so zero is exact.
    """
    mods = _observed_modules(model)
    sums: dict[str, list[float]] = {n: [0.0, 0.0] for n in mods}
    count = 0

    def hook(name: str):
        def record(_m, _inp, out: torch.Tensor) -> None:
            sums[name][0] += float(out.min())
            sums[name][1] += float(out.max())

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in mods.items()]
    try:
        with torch.inference_mode():
            for x in batches:
                model(x.contiguous(memory_format=torch.channels_last))
                count += 1
    finally:
        for h in handles:
            h.remove()
    if not count:
        raise ValueError("calibrate needs at least one batch of images")
    ranges = {"input": INPUT_RANGE}
    for n, (lo, hi) in sums.items():
        ranges[n] = (min(lo / count, 0.0), max(hi / count, 0.0))
    return {n: ranges[n] for n in activation_names(model)}


def calibration_paths(every: int = 8) -> list[str]:
    """The fixed calibration set: every ``every``-th Tux Paint stamp (sorted paths) plus the
    scikit-image sample photos. Both are CC0/GPL-compatible data that need no network."""
    import glob
    import os

    stamps = sorted(glob.glob("/usr/share/tuxpaint/stamps/**/*.png", recursive=True))[::every]
    from skimage import data as skdata

    root = os.path.dirname(skdata.__file__)
    photos = sorted(p for p in glob.glob(os.path.join(root, "*")) if p.endswith((".png", ".jpg")))
    return stamps + photos


def load_calibration_image(path: str):
    """A calibration image as the shipped ranges were measured: decoded fully, palette and
    grey-with-alpha modes left to :class:`ImagePreprocess` (which composites transparency), any
    other mode converted to RGB. The runtime's image sources decode palette images to RGB(A)
    first; keep this loader so that a rebuild gives the same bytes."""
    from PIL import Image

    im = Image.open(path)
    im.load()
    return im if im.mode in ("RGB", "RGBA", "LA", "PA", "P") else im.convert("RGB")


def _calibration_pixels(every: int) -> tuple[list[str], torch.Tensor]:
    paths = calibration_paths(every)
    if len(paths) < 32:
        raise RuntimeError(f"only {len(paths)} calibration images found; install tuxpaint-stamps-default and scikit-image")
    prep = ImagePreprocess()
    return paths, torch.stack([prep(load_calibration_image(p)) for p in paths])


def build_ranges(out: Path = RANGES_FILE, every: int = 8, batch: int = 16) -> dict:
    """Calibrate the float tower on the calibration set and write the activation ranges."""
    paths, pixels = _calibration_pixels(every)
    model = load_efficientnet_lite0().eval()
    ranges = calibrate(model, (pixels[i : i + batch] for i in range(0, len(pixels), batch)))
    names = "\n".join(Path(p).name for p in paths)
    data = {
        "format": FORMAT,
        "image_weights_sha256": WEIGHT_FILES["image"].sha256,
        "calibration": {"images": len(paths), "batch": batch, "every_nth_stamp": every,
                        "names_sha256": hashlib.sha256(names.encode()).hexdigest(), "torch": torch.__version__},
        "ranges": {k: [round(v[0], 6), round(v[1], 6)] for k, v in ranges.items()},
    }
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %d activation ranges from %d images to %s", len(ranges), len(paths), out)
    return data


def build_weights(out: Path = WEIGHTS_FILE, every: int = 8, batch: int = 16, damp: float = 0.01) -> dict[str, torch.Tensor]:
    """GPTQ-round every convolution (:func:`~.gptq.gptq_round`) with input moments of the float network
    on the calibration images, and write the int8 weights (about 3.4 MB)."""
    from safetensors.torch import save_file

    paths, pixels = _calibration_pixels(every)
    model = load_efficientnet_lite0().eval()
    moments = input_moments(model, (pixels[i : i + batch] for i in range(0, len(pixels), batch)))
    convs = dict(model.named_modules())
    weights = {n: gptq_round(convs[n].weight, h, damp).contiguous() for n, h in moments.items()}
    meta = {"format": FORMAT, "method": "gptq", "damp": str(damp), "images": str(len(paths)),
            "every_nth_stamp": str(every), "image_weights_sha256": WEIGHT_FILES["image"].sha256}
    save_file(weights, str(out), metadata=meta)
    log.info("wrote GPTQ-rounded int8 weights of %d convolutions from %d images to %s", len(weights), len(paths), out)
    return weights
