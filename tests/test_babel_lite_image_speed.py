"""babel-lite's fast image paths are correct: the exact padding rewrite and the int8 tower.

Real registry weights, offline, CPU. Timing is measured by bench/babel_lite_speed.py, not here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite_pytorch")

from babelclip.models.babel_lite import image_quant
from babelclip.models.babel_lite.image_tower import ImagePreprocess, load_efficientnet_lite0
from babelclip.models.babel_lite.model import _image_tower, _precision_extra
from babelclip_tools import gptq, int8_calibration


@pytest.fixture(scope="module")
def towers():
    fp32 = load_efficientnet_lite0().eval()
    return fp32, image_quant.quantize_classifier(fp32)


@pytest.fixture(scope="module")
def pixels():
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    prep = ImagePreprocess()
    names = ("chelsea", "coffee", "astronaut", "rocket")
    return torch.stack([prep(Image.fromarray(getattr(data, n)())) for n in names])


def test_folded_network_equals_the_original_module(pixels):
    """BN folding and the zero-tap kernels replacing TF's asymmetric SAME padding compute the
    unmodified efficientnet-lite-pytorch network's logits."""
    from efficientnet_lite_pytorch import EfficientNet

    from babelclip.models.babel_lite.weights import locate

    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(locate("image"), weights_only=True))
    ref.eval()
    ours = load_efficientnet_lite0()
    assert not any(isinstance(m, torch.nn.ZeroPad2d) for m in ours.modules())
    assert ours.stem.kernel_size == (4, 4) and ours.stem.padding == (1, 1)  # 3x3 stride 2, pad (0, 1)
    with torch.inference_mode():
        a, b = ref(pixels), ours(pixels.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(b, a, atol=2e-3, rtol=1e-4)


def test_int8_tower_agrees_with_float32(towers, pixels):
    fp32, int8 = towers
    with torch.inference_mode():
        p = torch.softmax(fp32(pixels.contiguous(memory_format=torch.channels_last)), -1)
        q = torch.softmax(int8(pixels), -1)
    assert q.dtype == torch.float32 and q.shape == p.shape
    tv = 0.5 * (p - q).abs().sum(1)
    if image_quant.cpu_has_int8_dot_products() is False:
        # saturating 16-bit sums (see cpu_has_int8_dot_products): building the tower says so,
        # and it stays a degraded copy of the float network rather than noise
        with pytest.warns(RuntimeWarning, match="no VNNI"):
            image_quant.quantize_classifier(fp32)
        assert (p.argmax(1) == q.argmax(1)).sum() >= 2 and float(tv.max()) < 0.5, tv
    else:
        assert p.argmax(1).tolist() == q.argmax(1).tolist()
        assert float(tv.max()) < 0.25, tv
    # not the float network under another name: int8 rounding moves the distribution a little
    assert float(tv.min()) > 1e-5
    # deterministic, and batch-independent: an image alone gives what it gives inside a batch
    with torch.inference_mode():
        alone, batched = int8(pixels[:1]), int8(pixels)[:1]
        assert torch.equal(alone, int8(pixels[:1])) and torch.equal(batched, int8(pixels)[:1])
    torch.testing.assert_close(alone, batched, atol=1e-4, rtol=0)


def test_float_prefix_runs_the_first_blocks_in_float32(towers, pixels):
    fp32, _ = towers
    mixed = image_quant.quantize_classifier(fp32, float_blocks=2)
    assert mixed.float_prefix is not None and len(mixed.blocks) == len(fp32.blocks) - 2
    x = pixels.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        p = torch.softmax(fp32(x), -1)
        q = torch.softmax(mixed(pixels), -1)
        prefix = fp32.blocks[:2](fp32.stem_act(fp32.stem(x)))
        torch.testing.assert_close(mixed.float_prefix(x), prefix, atol=0, rtol=0)
    # chelsea is a near tie of tiger cat and Egyptian cat: int8 may swap them, not leave the top 3
    assert all(int(a) in top for a, top in zip(q.argmax(1), p.topk(3, 1).indices.tolist()))
    assert float((0.5 * (p - q).abs().sum(1)).max()) < 0.25


def test_int8_structure_and_engine_left_as_found(towers):
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d
    from torch.ao.nn.quantized import Conv2d as QConv2d

    _, int8 = towers
    relu_convs = [m for m in int8.modules() if isinstance(m, ConvReLU2d)]
    linear_convs = [m for m in int8.modules() if isinstance(m, QConv2d) and not isinstance(m, ConvReLU2d)]
    assert len(linear_convs) == 16  # one projection per MBConv block
    assert len(relu_convs) == 2 + 16 + 15  # stem, head, 16 depthwise, 15 expansions
    # the packed weights are exactly the shipped GPTQ-rounded ones
    shipped = image_quant.read_int_weights()
    assert torch.equal(int8.stem.weight().int_repr(), shipped["stem"])
    assert torch.equal(int8.blocks[3].depthwise.weight().int_repr(), shipped["blocks.3.depthwise"])
    # ReLU6 is the saturation of a uint8 output starting at 0 and ending at 6 or below
    assert all(m.zero_point == 0 and m.scale * 255 <= 6.0 + 1e-6 for m in relu_convs)
    before = torch.backends.quantized.engine
    image_quant.quantize_classifier(towers[0], int_weights={})
    assert torch.backends.quantized.engine == before


def test_qparams():
    assert image_quant._qparams(0.0, 6.0) == pytest.approx((6.0 / 255, 0))
    scale, zp = image_quant._qparams(-1.0, 1.0)
    assert scale == pytest.approx(2 / 255) and zp in (127, 128)
    with pytest.raises(ValueError, match="contain 0"):
        image_quant._qparams(0.5, 6.0)


def test_ranges_cover_every_activation_and_are_checked(towers, tmp_path):
    model = towers[0]
    ranges = image_quant.read_ranges()
    assert set(ranges) == set(image_quant.activation_names(model))
    assert ranges["input"] == (-1.0, 1.0)
    del ranges["head"]
    with pytest.raises(ValueError, match="lack activations"):
        image_quant.QuantizedLite(model, ranges)
    with pytest.raises(ValueError, match="float_blocks"):
        image_quant.QuantizedLite(model, image_quant.read_ranges(), float_blocks=16)
    bad = tmp_path / "r.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="unsupported format"):
        image_quant.read_ranges(bad)


def test_calibrate_ranges_contain_zero_and_relu6_ends_at_6(towers, pixels):
    model = towers[0]
    ranges = int8_calibration.calibrate(model, [pixels[:2], pixels[2:]])
    assert list(ranges) == image_quant.activation_names(model)
    for name, (lo, hi) in ranges.items():
        assert lo <= 0.0 <= hi and hi > lo, name
        if name.endswith(("expand", "depthwise")) or name in ("stem", "head"):
            assert lo == 0.0 and hi <= 6.0, (name, lo, hi)


def test_precision_option_errors_and_fingerprints():
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="allowed: float32, int8"):
        _image_tower(False, "int4", cpu, torch.float32)
    with pytest.raises(ValueError, match="dtype float32"):
        _image_tower(False, "int8", cpu, torch.bfloat16)
    assert _precision_extra("float32") == ()
    (key, value), = _precision_extra("int8")
    assert key == "image_precision" and value.startswith("int8:onednn:ranges=")


def test_create_model_int8_end_to_end():
    """Through the registry: a cat photo still ranks 'cat' above 'car', with its own cache key."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from babelclip import create_model

    model = create_model("babel-lite", image_precision="int8")
    assert dict(model.fingerprint.extra)["image_precision"].startswith("int8")
    img = model.encode_images([Image.fromarray(data.chelsea())])
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    txt = model.encode_texts(["a photo of a cat", "a photo of a car"], "en")
    s = txt @ img[0]
    assert s[0] > s[1]
    with pytest.raises(TypeError, match="image_precision"):
        create_model("babel-lite", image_precison="int8")


def _output_error(q: torch.Tensor, w: torch.Tensor, moments: torch.Tensor) -> float:
    """E||(Q - W) p||² summed over output channels, from the input moments E[p pᵀ]."""
    d = (q.double().flatten(1) * image_quant.weight_scales(w)[:, None] - w.double().flatten(1))
    return float(torch.einsum("ri,rij,rj->", d, moments.expand(d.shape[0], -1, -1), d))


def test_gptq_rounding_beats_round_to_nearest_on_correlated_inputs():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 12, 1, 1, generator=g)
    mix = torch.randn(12, 12, generator=g)
    x = torch.randn(4000, 12, generator=g) @ mix + 1.0  # correlated, non-zero mean (like a white background)
    moments = (x.T @ x / len(x)).double()
    rtn = gptq.gptq_round(w, torch.eye(12, dtype=torch.float64))
    # with uncorrelated unit inputs GPTQ is round-to-nearest
    assert torch.equal(rtn.flatten(1), torch.round(w.flatten(1).double() / image_quant.weight_scales(w)[:, None]).to(torch.int8))
    q = gptq.gptq_round(w, moments)
    assert q.dtype == torch.int8 and q.shape == w.shape and int(q.abs().max()) <= 127
    assert _output_error(q, w, moments) < 0.5 * _output_error(rtn, w, moments)
    with pytest.raises(ValueError, match="do not fit"):
        gptq.gptq_round(w, moments[:5, :5])


def test_gptq_keeps_structural_zero_taps_and_input_moments_match_the_data():
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, groups=3)
    with torch.no_grad():
        conv.weight[:, :, 0, :] = 0  # a zero row in every channel, like the even-padding kernels
    x = torch.rand(2, 3, 10, 10, generator=g)
    moments = gptq.input_moments(torch.nn.Sequential(conv), [x])["0"]
    assert moments.shape == (3, 9, 9)
    # the centre tap of a depthwise patch is the pixel itself: its moment is E[x_c²]
    torch.testing.assert_close(moments[:, 4, 4], x.double().pow(2).mean((0, 2, 3)))
    q = gptq.gptq_round(conv.weight, moments)
    assert not q[:, :, 0, :].any()


def test_shipped_int8_weights_fit_the_network_and_enter_the_fingerprint(towers, tmp_path):
    fp32 = towers[0]
    shipped = image_quant.read_int_weights()
    convs = {n: c for n, c in fp32.named_modules() if isinstance(c, torch.nn.Conv2d)}
    assert set(shipped) == set(convs)
    for name, q in shipped.items():
        w = convs[name].weight.detach()
        assert q.dtype == torch.int8 and q.shape == w.shape, name
        deq = q.double().flatten(1) * image_quant.weight_scales(w)[:, None]
        # rounding moves each weight by at most a few int8 steps, never changes the network
        assert float((deq - w.double().flatten(1)).abs().max() / image_quant.weight_scales(w).max()) < 8, name
        assert not q.flatten(1)[:, (w.flatten(1) == 0).all(0)].any(), name
    ranges = tmp_path / "r.json"
    ranges.write_bytes(image_quant.RANGES_FILE.read_bytes())
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(image_quant.WEIGHTS_FILE.read_bytes())
    before = image_quant.ranges_digest(ranges, weights)
    assert before == image_quant.ranges_digest()
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")  # one weight of the last tensor
    assert image_quant.ranges_digest(ranges, weights) != before
    assert image_quant.ranges_digest(ranges, tmp_path / "absent") != before  # the weights count
    with pytest.raises(FileNotFoundError, match="rounded weights"):
        image_quant.read_int_weights(tmp_path / "missing.safetensors")
