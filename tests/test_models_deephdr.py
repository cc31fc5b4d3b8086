"""DeepHDR (Wu et al., ECCV 2018): parameter counts, the official layer conventions, frame roles, receptive
field vs ``context``, tiling, batch norm at inference, and the sharded weights files it ships in."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hdrkit.camera.response import GammaResponse, LinearResponse
from hdrkit.errors import HdrkitError
from hdrkit.models import weights
from hdrkit.models.deephdr import DeepHDRResNet, DeepHDRUNet, _Deconv, _same_pads
from hdrkit.models.inference import run_model
from hdrkit.models.weights import WEIGHTS_DIR, load_weights, save_weights

VARIANTS = [DeepHDRResNet, DeepHDRUNet]


def _inputs(h, w, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 3, h, w, generator=g), torch.tensor([[1.0, 4.0, 16.0]] * b)


def _count(cls):
    with torch.device("meta"):
        return sum(p.numel() for p in cls().parameters())


def test_resnet_parameter_count_matches_official_code():
    assert _count(DeepHDRResNet) == 16_606_339


def test_unet_parameter_count_follows_from_the_layers():
    assert _count(DeepHDRUNet) == 12_531_587


def test_tensorflow_same_padding():
    assert _same_pads(64, 5, 2) == (1, 2)  # stride 2: one before, two after
    assert _same_pads(64, 5, 1) == (2, 2)
    assert _same_pads(9, 3, 1) == (1, 1)


def test_deconv_is_the_transpose_of_the_same_padded_stride2_conv():
    torch.manual_seed(0)
    deconv = _Deconv(4, 3)
    torch.nn.init.zeros_(deconv.conv.bias)
    x, y = torch.randn(2, 3, 12, 14), torch.randn(2, 4, 6, 7)
    conv_x = F.conv2d(F.pad(x, (1, 2, 1, 2)), deconv.conv.weight, stride=2)  # "SAME", zero padded, 3 -> 4
    assert conv_x.shape == y.shape
    assert torch.allclose((conv_x * y).sum(), (deconv(y) * x).sum(), rtol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_encoders_get_ldr_and_gamma_hdr_in_minus1_1_in_exposure_roles(cls):
    model = cls(features=8).eval()
    seen = {}
    for i, enc in enumerate(model.encoders):
        enc.conv1.register_forward_pre_hook(lambda mod, args, i=i: seen.__setitem__(i, args[0].clone()))
    ldr, _ = _inputs(32, 48)
    t = torch.tensor([[4.0, 1.0, 16.0]])  # frame 0 is the reference; frame 1 the shorter, frame 2 the longer
    with torch.no_grad():
        model(ldr, t, 0)
    for enc, frame in ((0, 1), (1, 0), (2, 2)):
        x = seen[enc]
        assert torch.allclose(x[:, :3], ldr[:, frame] * 2 - 1)
        assert torch.allclose(x[:, 3:], ldr[:, frame] ** 2.2 / t[0, frame] * 2 - 1, atol=1e-6)


def test_response_replaces_the_fixed_gamma():
    model = DeepHDRResNet(features=8).eval()
    ldr, t = _inputs(32, 32)
    ref = torch.tensor([1])
    assert torch.allclose(model.prepare(ldr, t, ref)["lin"], ldr ** 2.2 / t[:, :, None, None, None])
    assert torch.allclose(model.prepare(ldr, t, ref, GammaResponse(2.2))["lin"], model.prepare(ldr, t, ref)["lin"])
    lin = model.prepare(ldr, t, ref, LinearResponse())["lin"]
    assert torch.allclose(lin, ldr / t[:, :, None, None, None])
    with torch.no_grad():
        assert not torch.allclose(model(ldr, t, 1, LinearResponse()), model(ldr, t, 1))


@pytest.mark.parametrize("cls", VARIANTS)
def test_frame_order_does_not_matter_only_exposures_and_reference(cls):
    torch.manual_seed(0)
    model = cls(features=8).eval()
    ldr, t = _inputs(32, 48)
    perm = [2, 0, 1]
    with torch.no_grad():
        a = model(ldr, t, 1)
        b = model(ldr[:, perm], t[:, perm], 2)  # the same frames, listed in another order; the same reference
    assert torch.allclose(a, b, atol=1e-6)


def test_output_is_tanh_mapped_to_radiance_in_unit_range():
    model = DeepHDRResNet(features=8).eval()
    with torch.no_grad():
        model.out.conv.weight.zero_()
        model.out.conv.bias.fill_(math.atanh(2 * 0.2 - 1))
        out = model(*_inputs(24, 40), 1)
    assert torch.allclose(out, torch.full_like(out, 0.2), atol=1e-6)


@pytest.mark.parametrize("cls", VARIANTS)
def test_batch_norm_uses_running_statistics_in_eval_mode(cls):
    torch.manual_seed(0)
    model = cls(features=8)
    ldr, t = _inputs(32, 32, b=2)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(ldr, t, 1)[:1], model(ldr[:1], t[:1], 1), atol=1e-5)
        model.train()
        assert not torch.allclose(model(ldr, t, 1)[:1], model(ldr[:1], t[:1], 1), atol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_any_size(cls):
    model = cls(features=8).eval()
    for h, w in ((37, 45), (8, 8), (70, 17)):
        with torch.no_grad():
            assert model(*_inputs(h, w), 1).shape == (1, 3, h, w)


@pytest.mark.parametrize("cls, size", [(DeepHDRUNet, 160), (DeepHDRResNet, 368)])
def test_receptive_field_is_within_context(cls, size):
    """Gradient support of output pixels at every phase of the coarsest grid (the width does not change it)."""
    torch.manual_seed(0)
    model = cls(features=4).eval()
    radius = 0
    for phase in range(cls.size_divisor):
        c = size // 2 + phase
        ldr, t = _inputs(size, size, seed=phase)
        lin = torch.rand_like(ldr)
        ldr.requires_grad_(True)
        lin.requires_grad_(True)
        model.refine(ldr, t, torch.tensor([1]), lin=lin)[0, :, c, c].sum().backward()
        ys, xs = torch.nonzero((ldr.grad.abs() + lin.grad.abs()).sum((0, 1, 2)), as_tuple=True)
        radius = max(radius, int((ys - c).abs().max()), int((xs - c).abs().max()))
    assert radius <= cls.context
    assert radius > cls.context - 8  # context is not a loose over-estimate either (measured 174 / 62 px)


@pytest.mark.parametrize("cls, size, tile", [(DeepHDRUNet, (240, 272), 64), (DeepHDRResNet, (336, 344), 128)])
def test_tiles_cut_inside_the_image_equal_the_whole_image(cls, size, tile):
    torch.manual_seed(3)
    model = cls(features=4).eval()
    with torch.no_grad():  # He-scaled weights: the official N(0, 0.02) at this width lets the signal die out,
        for m in model.modules():  # and then even half the context would pass
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, (2 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, nn.ConvTranspose2d):
                m.weight.normal_(0, (8 / m.weight.shape[0] / m.weight[0, 0].numel()) ** 0.5)
    ldr, t = _inputs(*size)
    whole = run_model(model, ldr, t, 1, tile=0)
    tiled = run_model(model, ldr, t, 1, tile=tile)  # tile inputs end inside the image on every side somewhere
    assert (whole - tiled).abs().max() < 1e-4


def test_resnet_ships_in_fp16_as_two_files_under_20_mib():
    with torch.device("meta"):
        sizes = [v.numel() * 2 for v in DeepHDRResNet().state_dict().values() if v.is_floating_point()]
    assert sum(sizes) > 20 * 2**20  # one fp16 file would be too large
    assert sum(sizes) + max(sizes) <= 2 * weights.MAX_FILE_BYTES < 2 * 20 * 2**20  # two shards always suffice


def test_large_weights_are_sharded_and_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "MAX_FILE_BYTES", 100_000)
    model = DeepHDRResNet(features=8)
    path = tmp_path / "deephdr_resnet.safetensors"
    save_weights(model, path, dtype=torch.float16)
    shards = sorted(tmp_path.glob("deephdr_resnet.shard*.safetensors"))
    assert len(shards) >= 3 and len(list(tmp_path.iterdir())) == len(shards) + 1
    fresh = load_weights(DeepHDRResNet(features=8), path)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v.half().to(v.dtype) if v.is_floating_point() else v), k
    shard = shards[-1]
    shard.write_bytes(shard.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(HdrkitError, match=rf"{shard.name}: sha256 does not match the digest recorded in") as e:
        load_weights(DeepHDRResNet(features=8), path)
    assert "\n" not in str(e.value)
    shard.unlink()
    with pytest.raises(HdrkitError, match="weights shard of deephdr_resnet.safetensors not found"):
        load_weights(DeepHDRResNet(features=8), path)


def test_every_packaged_weights_file_is_under_20_mib():
    for f in WEIGHTS_DIR.glob("*.safetensors"):
        assert f.stat().st_size < 20 * 2**20, f.name
