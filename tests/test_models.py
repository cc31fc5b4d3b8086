"""One suite over every registered learned network: shapes, gradients, state dicts, tiling, bf16, errors."""

from __future__ import annotations

import pytest
import torch

from hdrkit.data import procedural_scene, synthesize_bracket
from hdrkit.errors import HdrkitError
from hdrkit.methods import all_methods, get_method, run_method
from hdrkit.metrics import psnr_mu
from hdrkit.models import MODELS, AHDRNet, create_model
from hdrkit.models.inference import run_model
from hdrkit.models.weights import WEIGHTS, load_weights, save_weights, weights_path

LEARNED = [name for name, card in all_methods().items() if card.learned]


def _bracket(h=48, w=56, n=3, b=2, seed=0, bits=8):
    """A dynamic bracket (two moving objects, so every network's motion path is exercised) and its truth."""
    hdr = procedural_scene(max(h, 64), max(w, 64), seed=seed)[:, :h, :w]
    hdr = hdr / hdr.quantile(0.99)
    times = tuple(4.0**i for i in range(n))
    sb = synthesize_bracket(hdr, exposure_times=times, bits=bits, moving_objects=2, object_motion_px=(6.0, 12.0), seed=seed)
    ldr = sb.ldr[None].expand(b, -1, -1, -1, -1).contiguous()
    t = sb.exposure_times[None].expand(b, -1).contiguous()
    return ldr, t, sb.hdr_gt[None].expand(b, -1, -1, -1)


def _frames(name):
    lo, hi = get_method(name).frames
    return lo if hi == lo else 3


def _ref(name):
    """A reference frame other than the first where the network takes several (0 for single-image networks)."""
    return min(1, _frames(name) - 1)


def test_every_network_is_registered():
    assert set(LEARNED) == set(MODELS)
    for name in LEARNED:
        card = get_method(name)
        assert card.kind in ("merge", "single") and card.output == "radiance" and card.paper and card.weights


@pytest.mark.parametrize("name", LEARNED)
def test_shape_finite_nonnegative(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    ldr, t, _ = _bracket(n=_frames(name))
    ref = torch.tensor([_ref(name), 0])
    with torch.no_grad():
        out = model(ldr, t, ref)
    assert out.shape == (2, 3, 48, 56) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and (out >= 0).all()


@pytest.mark.parametrize("name", LEARNED)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    ldr, t, hdr = _bracket(n=_frames(name))
    out = model(ldr, t, torch.tensor([_ref(name), 0]))
    (out - hdr).abs().mean().backward()
    unused, inert = set(model.unused_parameters), set(model.inert_parameters)
    for pname, p in model.named_parameters():
        if pname in unused:
            assert p.grad is None, f"{pname} is declared unused but gets a gradient"
        elif pname in inert:  # zero by construction (a bias before batch norm); rounding leaves ~1e-9
            assert p.grad is None or p.grad.abs().max() < 1e-6, f"{pname} is declared inert but gets a gradient"
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("name", LEARNED)
def test_state_dict_round_trip(name, tmp_path):
    torch.manual_seed(1)
    a = MODELS[name]().eval()
    path = tmp_path / f"{name}.safetensors"
    save_weights(a, path)
    b = create_model(name, pretrained=False, weights=path)
    ldr, t, _ = _bracket(n=_frames(name), b=1)
    with torch.no_grad():
        assert torch.equal(a(ldr, t, _ref(name)), b(ldr, t, _ref(name)))


@pytest.mark.parametrize("name", LEARNED)
def test_tiled_equals_untiled(name):
    torch.manual_seed(2)
    model = MODELS[name]().eval()
    ldr, t, _ = _bracket(h=150, w=170, n=_frames(name), b=1)
    whole = run_model(model, ldr, t, _ref(name), tile=0)
    tiled = run_model(model, ldr, t, _ref(name), tile=48)
    # relative part: an untrained single-image network's exp(log radiance) reaches 1e5 in highlights
    torch.testing.assert_close(tiled, whole, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("name", LEARNED)
def test_bf16_close_to_fp32(name):
    if f"{name}.safetensors" not in WEIGHTS:
        pytest.skip(f"no packaged weights for {name}")
    model = create_model(name)
    ldr, t, hdr = _bracket(h=128, w=160, n=_frames(name), b=1, bits=16)
    fp32 = run_model(model, ldr, t, _ref(name))
    bf16 = run_model(model, ldr, t, _ref(name), dtype="bf16")
    gt = hdr[0]
    assert abs(float(psnr_mu(fp32[0], gt)) - float(psnr_mu(bf16[0], gt))) < 0.3


def test_ahdrnet_parameter_count_matches_official_code():
    assert sum(p.numel() for p in AHDRNet().parameters()) == 1_515_139


def test_any_n_network_takes_two_and_five_frames():
    model = MODELS["deghost_refine"]().eval()
    for n in (2, 5):
        ldr, t, _ = _bracket(n=n, b=1)
        with torch.no_grad():
            assert model(ldr, t, n // 2).shape == (1, 3, 48, 56)


def test_fixed_n_network_refuses_other_n():
    ldr, t, _ = _bracket(n=4, b=1)
    with pytest.raises(HdrkitError, match="exactly 3 frames"):
        AHDRNet()(ldr, t, 1)
    with pytest.raises(HdrkitError, match="takes exactly 3 frames, got 4"):
        run_method("ahdrnet", ldr, t, 1, weights="unused.safetensors")


def test_bad_weights_files_give_one_line(tmp_path):
    model = AHDRNet()
    good = tmp_path / "a.safetensors"
    save_weights(model, good)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(HdrkitError, match="trunc.safetensors: not a readable safetensors") as e:
        load_weights(AHDRNet(), trunc)
    assert "\n" not in str(e.value)
    with pytest.raises(HdrkitError, match="does not match the recorded"):
        load_weights(AHDRNet(), good, sha256="0" * 64)
    other = tmp_path / "other.safetensors"
    save_weights(MODELS["deghost_refine"](), other)
    with pytest.raises(HdrkitError, match=r"weights do not fit AHDRNet: missing: .*unexpected: ") as e:
        load_weights(AHDRNet(), other)
    assert "\n" not in str(e.value)
    with pytest.raises(HdrkitError, match="not found"):
        load_weights(AHDRNet(), tmp_path / "none.safetensors")


def test_packaged_weights_match_recorded_digests():
    from hdrkit.models.weights import sha256_file

    for file, digest in WEIGHTS.items():
        assert sha256_file(weights_path(file)) == digest, file
        assert weights_path(file).stat().st_size < 20 * 2**20
        assert weights_path(file).with_suffix(".md").is_file(), f"{file} has no model card"


def test_run_model_rejects_bad_input():
    model = MODELS["deghost_refine"]().eval()
    ldr, t, _ = _bracket(b=1)
    with pytest.raises(HdrkitError, match="dtype"):
        run_model(model, ldr, t, 1, dtype="fp8")
    bad = ldr.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(HdrkitError, match="NaN"):
        run_model(model, bad, t, 1)
    with pytest.raises(HdrkitError, match="reference"):
        run_model(model, ldr, t, 7)
    with pytest.raises(HdrkitError, match="too small"):
        run_model(model, ldr, t, 1, max_memory=1e5)
