"""DFGNet specifics: parameter counts, the attention units' equations, the output mapping, the whole-image
context (strips, packing, tiling), frame roles, and the disentangle stage's loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hdrkit.models.dfgnet as dfg
from hdrkit.errors import HdrkitError
from hdrkit.models.dfgnet import DFGNet, cross_exposure_target, pack_context, unpack_context
from hdrkit.models.inference import run_model


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _bracket(h=48, w=56, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 1, 3, h, w, generator=g)
    t = torch.tensor([[1.0, 4.0, 16.0]]).expand(b, -1)
    ldr = (base * t[:, :, None, None, None] / 4).clamp(0, 1) ** (1 / 2.2)
    return ldr.contiguous(), t.contiguous()


def test_parameter_counts_follow_the_official_layer_lists():
    m = DFGNet()
    assert _count(m.dfg) == 9_558_467
    assert _count(m.disentangle.exposure_encoder) == 3_026_048
    assert _count(m.disentangle.spatial_encoder) == 12_470_784
    assert _count(m.disentangle.decoder) == 12_234_307
    assert _count(m) == 37_289_606


def test_exposure_attention_is_a_softmax_over_frames():
    eau = dfg.ExposureAttention(4)
    bias = torch.tensor([0.0, 1.0, 2.0])
    with torch.no_grad():
        for i, fc in enumerate(eau.fcs):
            fc.weight.zero_()
            fc.bias.fill_(float(bias[i]))
    feats = [torch.full((1, 4, 3, 3), float(v)) for v in (1.0, 10.0, 100.0)]
    out = eau(feats, torch.randn(1, 3, dfg.EXPOSURE_DIM))
    w = bias.softmax(0)
    assert torch.allclose(out, torch.full_like(out, float(w @ torch.tensor([1.0, 10.0, 100.0]))))


def test_spatial_attention_gates_each_frame_by_a_sigmoid():
    sau = dfg.SpatialAttention(4)
    bias = torch.tensor([-1.0, 0.5, 2.0])
    with torch.no_grad():
        for i, f in enumerate((sau.filter1, sau.filter2, sau.filter3)):
            f.weight.zero_()
            f.bias.fill_(float(bias[i]))
    feats = [torch.full((1, 4, 5, 5), float(v)) for v in (1.0, 2.0, 3.0)]
    spatial = [torch.randn(1, 4, 5, 5) for _ in range(3)]
    out = sau(feats, spatial)
    expected = float(torch.sigmoid(bias) @ torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)
    # the gates do depend on the spatial features once the filters see them
    sau2 = dfg.SpatialAttention(4)
    a = sau2(feats, spatial)
    b = sau2(feats, [s + 1 for s in spatial])
    assert not torch.allclose(a, b)


def test_output_is_tanh_mapped_to_zero_one():
    torch.manual_seed(0)
    m = DFGNet().eval()
    with torch.no_grad():
        m.dfg.conv_tail2.weight.zero_()
        m.dfg.conv_tail2.bias.copy_(torch.tensor([-3.0, 0.0, 0.7]))
    ldr, t = _bracket()
    with torch.no_grad():
        out = m(ldr, t, 1)
    expected = (torch.tanh(torch.tensor([-3.0, 0.0, 0.7])) + 1) / 2
    assert torch.allclose(out[0, :, 10, 10], expected, atol=1e-6)
    assert torch.allclose(out.amin((2, 3))[0], expected, atol=1e-6)


def test_frame_order_and_reference_roles():
    torch.manual_seed(0)
    m = DFGNet().eval()
    ldr, t = _bracket()
    perm = [1, 2, 0]  # reference (t = 4) first, then the high, then the low frame
    with torch.no_grad():
        a = m(ldr, t, 1)
        b = m(ldr[:, perm], t[:, perm], 0)
        c = m(ldr, t, 0)  # another reference: the other two frames take the low / high roles
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-3)
    assert DFGNet.order(t, torch.tensor([2])).tolist() == [[0, 2, 1]]


@pytest.mark.parametrize("h,w", [(100, 90), (20, 70), (8, 8)])
def test_pack_context_round_trips_on_block_aligned_crops(h, w):
    vec = torch.randn(2, dfg.CONTEXT_SIZE)
    ctx = pack_context(vec, h, w)
    assert ctx.shape[-2:] == (h, w)
    if min(h, w) >= 32:
        assert ctx.shape[1] == 4  # 3,090 numbers + 2 header slots in 32 x 32 x 4
    assert torch.equal(unpack_context(ctx), vec)
    if h > 64 and w > 64:
        assert torch.equal(unpack_context(ctx[..., 32:, 32:]), vec)  # run_model's tiles: >= 32 px, on the grid
        padded = torch.nn.functional.pad(ctx[..., 64:, 32:], (0, 5, 0, 7), mode="replicate")
        assert torch.equal(unpack_context(padded), vec)


def test_strips_give_the_whole_image_context(monkeypatch):
    torch.manual_seed(0)
    m = DFGNet().eval()
    ldr, t = _bracket(h=150, w=70)
    idx = m.order(t, torch.tensor([1]))
    with torch.no_grad():
        ex, stats = m.whole_image_context(ldr[:, idx[0]])
    monkeypatch.setattr(dfg, "STRIP_PIXELS", 32 * 70)  # 32-row strips: five strips with halos
    with torch.no_grad():
        ex_s, stats_s = m.whole_image_context_strips(ldr, idx)
    assert torch.allclose(ex, ex_s, rtol=1e-4, atol=1e-5)
    assert torch.allclose(stats, stats_s, rtol=1e-4, atol=1e-6)


def test_tiled_inference_with_the_context_prior_equals_the_direct_forward():
    torch.manual_seed(3)
    m = DFGNet().eval()
    ldr, t = _bracket(h=128, w=96, seed=1)  # multiples of 32: run_model pads nothing
    with torch.no_grad():
        direct = m(ldr, t, 1)  # not inference mode: refine computes the context itself
    whole = run_model(m, ldr, t, 1, tile=0)  # inference mode: the context prior from prepare
    assert (whole - direct).abs().max() < 1e-4
    ldr, t = _bracket(h=130, w=100, seed=1)
    whole = run_model(m, ldr, t, 1, tile=0)
    tiled = run_model(m, ldr, t, 1, tile=32)
    assert (whole - tiled).abs().max() < 1e-4


def test_receptive_radius_is_within_context():
    torch.manual_seed(0)
    m = DFGNet().eval()
    ldr, t = _bracket(h=128, w=128, seed=2)
    ref = torch.tensor([1])
    with torch.inference_mode():
        pri = m.prepare(ldr, t, ref)
        base = m.refine(ldr, t, ref, **pri)
        changed = ldr.clone()
        changed[..., 64, 65] = 1 - changed[..., 64, 65]
        pri2 = dict(pri, lin=m.prepare(changed, t, ref)["lin"])
        diff = (m.refine(changed, t, ref, **pri2) - base).abs().amax((0, 1))
    ys, xs = torch.nonzero(diff > 0, as_tuple=True)
    assert len(ys) > 0
    assert max((ys - 64).abs().max(), (xs - 65).abs().max()) <= DFGNet.context


def test_cross_exposure_target_inverts_eq7():
    hdr = torch.tensor([0.01, 0.25, 0.9]).reshape(1, 3, 1, 1).expand(2, -1, 2, 2)
    y = cross_exposure_target(hdr, torch.tensor([1.0, 4.0]))
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([0.01, 0.25, 0.9]) ** (1 / 2.2) * 2 - 1)
    assert torch.allclose(y[1, :, 0, 0], torch.tensor([0.04**(1 / 2.2) * 2 - 1, 1.0, 1.0]))


def test_disentangle_stage_trains_the_disentangle_network_only():
    torch.manual_seed(0)
    m = DFGNet(stage="disentangle")
    ldr, t = _bracket(h=36, w=44, b=2)
    hdr = torch.rand(2, 3, 36, 44)
    loss = m.training_loss(ldr, t, torch.tensor([1, 1]), hdr, priors={}, loss_fn=None)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in m.named_parameters():
        if name.startswith("dfg."):
            assert p.grad is None, name
        elif name.startswith(("disentangle.decoder.", "disentangle.exposure_encoder.", "disentangle.spatial_encoder.")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(HdrkitError, match="at least 16"):
        m.training_loss(ldr[..., :12, :12], t, torch.tensor([1, 1]), hdr[..., :12, :12], priors={}, loss_fn=None)


def _fake_vgg19(path):
    cfg, cin, state, i = dfg.VGG19_LAYERS, 3, {}, 0
    g = torch.Generator().manual_seed(0)
    for v in cfg:
        if v == "M":
            i += 1
            continue
        state[f"features.{i}.weight"] = torch.randn(v, cin, 3, 3, generator=g) * 0.05
        state[f"features.{i}.bias"] = torch.zeros(v)
        cin, i = v, i + 2
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)


def test_gram_term_with_local_vgg19_weights(tmp_path):
    path = tmp_path / "vgg19.pth"
    _fake_vgg19(path)
    torch.manual_seed(0)
    plain = DFGNet(stage="disentangle")
    with_vgg = DFGNet(stage="disentangle", vgg19_weights=str(path), perceptual_weight=10.0)
    with_vgg.load_state_dict(plain.state_dict())
    assert set(with_vgg.state_dict()) == set(plain.state_dict())
    ldr, t = _bracket(h=32, w=32)
    hdr = torch.rand(1, 3, 32, 32)
    args = (ldr, t, torch.tensor([1]), hdr)
    with torch.no_grad():
        a = plain.training_loss(*args, priors={}, loss_fn=None)
        b = with_vgg.training_loss(*args, priors={}, loss_fn=None)
    assert b > a
    assert not any("vgg" in n for n, _ in with_vgg.named_parameters())


def test_bad_options_give_one_line_errors(tmp_path):
    with pytest.raises(HdrkitError, match="stage must be one of"):
        DFGNet(stage="merge")
    with pytest.raises(HdrkitError, match="does not exist"):
        DFGNet(stage="disentangle", vgg19_weights=str(tmp_path / "none.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(HdrkitError, match="not VGG-19 weights") as e:
        dfg.load_vgg19_features(bad)
    assert "\n" not in str(e.value)
