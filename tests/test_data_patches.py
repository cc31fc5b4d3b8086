import numpy as np
import pytest
import torch

from hdrkit.data.kalantari2017 import Scene
from hdrkit.data.patches import PatchDataset
from hdrkit.data.transforms import (
    Augmentation,
    apply_augmentation,
    apply_augmentation_np,
    random_crop_box,
    sample_augmentation,
)
from hdrkit.errors import HdrkitError


def _scene(name="s", h=40, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    hdr = torch.rand(3, h, w, generator=g) * 4
    t = torch.tensor([1.0, 4.0, 16.0])
    ldr = (hdr[None] * t[:, None, None, None]).clamp(0, 1) ** (1 / 2.2)
    ldr = torch.round(ldr * 65535) / 65535
    return Scene(name, ldr, t, hdr, [], reference=1)


def test_augmentation_group_and_consistency():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    aug = Augmentation(rot90=1, flip=True, permutation=(2, 0, 1))
    y = apply_augmentation(x, aug)
    assert y.shape == (2, 3, 5, 4)
    # channel c of the output is channel perm[c] of the input, transformed the same way for each frame
    for f in range(2):
        for c, src in enumerate(aug.permutation):
            ref = torch.flip(torch.rot90(x[f, src], 1, dims=(0, 1)), dims=(1,))
            assert torch.equal(y[f, c], ref)
    assert torch.equal(apply_augmentation(x, Augmentation()), x)
    for a in {sample_augmentation(np.random.default_rng(i)) for i in range(100)}:
        assert np.array_equal(apply_augmentation_np(x.numpy(), a), apply_augmentation(x, a).numpy())
    seen = {sample_augmentation(np.random.default_rng(i)) for i in range(300)}
    assert len(seen) == 48


def test_random_crop_box():
    rng = np.random.default_rng(0)
    boxes = [random_crop_box(rng, 10, 12, 4) for _ in range(200)]
    assert min(b[0] for b in boxes) == 0 and max(b[0] for b in boxes) == 6
    assert max(b[1] for b in boxes) == 8
    with pytest.raises(HdrkitError):
        random_crop_box(rng, 10, 12, 11)


def test_patch_dataset_consistency_and_determinism():
    scenes = [_scene("a", seed=0), _scene("b", 48, 40, seed=1)]
    ds = PatchDataset(scenes, patch_size=16, patches_per_scene=5, augment=True, seed=3)
    assert len(ds) == 10
    for i in range(len(ds)):
        item = ds[i]
        assert item["ldr"].shape == (3, 3, 16, 16) and item["hdr"].shape == (3, 16, 16)
        assert item["scene"] == i // 5 and item["reference"] == 1
        # the label still explains the frames: the same crop and transform were applied to both
        t = item["exposure_times"]
        expect = (item["hdr"][None] * t[:, None, None, None]).clamp(0, 1) ** (1 / 2.2)
        assert torch.allclose(item["ldr"], expect, atol=2e-5)
    again = PatchDataset(scenes, patch_size=16, patches_per_scene=5, seed=3)
    assert torch.equal(ds[7]["hdr"], again[7]["hdr"])
    before = ds[7]["hdr"].clone()
    ds.set_epoch(1)
    assert not torch.equal(ds[7]["hdr"], before)


def test_patch_dataset_dataloader_batches():
    ds = PatchDataset([_scene()], patch_size=(8, 12), patches_per_scene=6, augment=False)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["ldr"].shape == (3, 3, 3, 8, 12) and batch["exposure_times"].shape == (3, 3)
    assert batch["hdr"].shape == (3, 3, 8, 12)


def test_patch_dataset_errors():
    with pytest.raises(HdrkitError):
        PatchDataset([_scene()], patch_size=64)
    s = _scene()
    s.hdr = None
    with pytest.raises(HdrkitError):
        PatchDataset([s])
    with pytest.raises(HdrkitError):
        PatchDataset([])
