"""StackHDR (Kim, Lee & Kang 2020): parameter count, recurrent state, losses, end-to-end training step."""

from __future__ import annotations

import torch

from hdrkit.models.stackhdr2020 import RecurrentStack, StackHDR, canny_edges, cobi_loss, exposure_targets, soft_histogram


def test_parameter_count():
    assert sum(p.numel() for p in StackHDR().parameters()) == 8_286_638


def test_gru_state_carries_over_recursions():
    torch.manual_seed(0)
    net = RecurrentStack(4).eval().global_net
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y1, h1 = net(x, None)
        y2, h2 = net(x, h1)  # the second recursion sees the first one's state
    assert (h2 - h1).abs().max() > 1e-3
    assert (y2 - y1).abs().max() > 0


def test_exposure_targets_follow_the_photo_response():
    hdr = torch.rand(2, 3, 24, 24) * 0.9 + 0.01
    photo = hdr ** (1 / 2.2)
    up, down = exposure_targets(photo, hdr, [1, -2])
    torch.testing.assert_close(up, (2 * hdr).clamp(0, 1) ** (1 / 2.2), atol=1e-4, rtol=0)
    torch.testing.assert_close(down, (hdr / 4) ** (1 / 2.2), atol=1e-4, rtol=0)


def test_canny_edges_find_a_step():
    img = torch.zeros(1, 3, 32, 32)
    img[..., 16:] = 1.0
    e = canny_edges([img])[0]
    assert e.shape == (1, 1, 32, 32)
    cols = e[0, 0, 8:24].nonzero()[:, 1]
    assert cols.numel() > 0 and ((cols >= 14) & (cols <= 17)).all()


def test_soft_histogram_counts_levels():
    x = torch.tensor([0.0, 0.0, 1.0, 0.5]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    h = soft_histogram(x, bins=3)
    torch.testing.assert_close(h[0, 0], torch.tensor([0.5, 0.25, 0.25]))


def test_cobi_is_zero_for_identical_images_and_grows_with_difference():
    torch.manual_seed(0)
    a = torch.rand(1, 3, 20, 20)
    assert float(cobi_loss(a, a)) < 1e-5  # float32 rounding of the cosine
    assert float(cobi_loss(torch.rand(1, 3, 20, 20), a)) > 0.05


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = StackHDR(width=4)
    hdr = torch.rand(1, 3, 32, 32) * 2
    ldr = hdr.clamp(0, 1)[:, None] ** (1 / 2.2)
    loss = model.training_loss(ldr, torch.ones(1, 1), torch.zeros(1, dtype=torch.long), hdr, priors={}, loss_fn=None)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
