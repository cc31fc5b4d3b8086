"""Training: typed YAML configs, synthetic brackets from the training radiance maps, ``fit`` and ``evaluate``.

``fit(config)`` trains one registered network on patches of brackets synthesized (with hdrkit's own
formation model) from the training split of the radiance maps (``hdrkit.data.splits.TRAINING_HDR``), or
from the built-in procedural scene. It writes, in ``out_dir``: ``checkpoint.pt`` (atomically, every
``checkpoint_minutes`` and at the end; a killed run started again continues from it), ``log.csv`` (one
row per ``log_every`` steps and per validation) and ``config.yaml``. It runs data-parallel under
``torchrun`` (gloo on CPU, nccl on CUDA): the global batch is split across processes, so the loss curve
matches a single process. Adam, cosine schedule with warm-up, mu-law losses, optional bf16 autocast with
float32 master weights.

Single-image networks (``frames = 1``, registered with kind ``'single'``) train on single-exposure LDR/HDR
pairs instead, chosen automatically from the network: each crop of a training radiance map is exposed once
(t = 1) so that a fraction of its pixels drawn from ``data.clip`` saturates, through a response drawn from the
group's ``response`` family (``dorf``: a random measured DoRF curve), with the group's ``noise`` (darktable
profiles) and ``jpeg_quality``, quantized to 8 bits (``bits: 8`` is required). The target is the radiance in
the units of that exposure (1 = saturation: ``single_linearize`` with the true response reproduces it below
the clip), which the scale-invariant single-image metrics compare after one global scale
(``hdrkit.metrics.log2_rmse_regions``). The network's ``prepare`` gets ``response=None`` (a photo's response
is unknown). The loss must see radiance above 1: ``loss: log_l1`` (or the network's own ``training_loss``).
Validation: ``val_scenes`` pairs from the validation maps (DoRF responses, noise, 8 bits, seed 2017), logged
as ``val_log2_rmse_clipped`` / ``val_log2_rmse_exposed`` (stops). Motion, ``align`` and ``calibrate`` do not
apply to pairs (``tests/test_train_single.py`` trains a toy single-image network this way). A typical data
section for a single-image network::

    loss: log_l1
    data:
      source: training
      crop: 256
      patch: 128
      clip: [0.01, 0.15]
      groups:
        - {scenes: 96, response: dorf, bits: 8, noise: true}
        - {scenes: 32, response: dorf, bits: 8, noise: true, jpeg_quality: 90}
        - {scenes: 16, response: srgb, bits: 8, noise: true, jpeg_quality: 75}

Config keys (unknown keys are errors). Top level (:class:`TrainConfig`): ``model``, ``out_dir``, ``data``,
``steps``, ``batch_size``, ``lr``, ``warmup_steps``, ``min_lr_ratio``, ``loss`` (``hdrkit.losses.LOSSES``),
``bf16``, ``threads``, ``seed``, ``log_every``, ``val_every``, ``checkpoint_minutes``, ``max_minutes``,
``grad_clip``, ``model_options``, ``init_from``, ``freeze``. ``data`` (:class:`DataConfig`): ``source``
(``training`` | ``procedural``), ``hdr_root``, ``cache_dir``, ``crop``, ``patch``, ``seed``, ``align``,
``groups``, ``val_scenes``, ``val_crop``, ``clip`` (single-image pairs: ``[lo, hi]`` fraction of clipped
pixels). ``data.groups[i]`` (:class:`GroupConfig`): ``scenes``, ``response``, ``bits``, ``noise``,
``jpeg_quality``, ``motion``, ``global_motion_px``, ``moving_objects``, ``object_motion_px``, ``nonrigid_px``,
``calibrate``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hdrkit.errors import HdrkitError

__all__ = ["DataConfig", "GroupConfig", "TrainConfig", "load_config", "fit", "evaluate", "build_scenes",
           "export_weights", "default_data_root", "is_single_image", "val_metrics"]


@dataclass
class GroupConfig:
    """One kind of synthetic bracket: camera regime and motion.

    response: ``gamma``, ``srgb``, ``dorf`` or ``emor`` (``hdrkit.data.sample_response``). bits: 8 or 16.
    noise: darktable sensor noise. jpeg_quality: JPEG-compress 8-bit frames. motion: ``static`` or
    ``dynamic`` (camera shake ``global_motion_px``, ``moving_objects`` objects moving
    ``object_motion_px``, deformed by ``nonrigid_px``). calibrate: fraction of scenes whose priors use the
    response recovered by Debevec 1997 instead of the true one (the ``--response calibrate`` case).
    """

    scenes: int = 16
    response: str = "gamma"
    bits: int = 16
    noise: bool = False
    jpeg_quality: int | None = None
    motion: str = "dynamic"
    global_motion_px: float = 2.0
    moving_objects: int = 2
    object_motion_px: tuple[float, float] = (10.0, 50.0)
    nonrigid_px: float = 0.0
    calibrate: float = 0.0


@dataclass
class DataConfig:
    """Where training scenes come from. source: ``training`` (the training split under ``hdr_root``) or
    ``procedural`` (the built-in scene; no data needed). hdr_root: default ``$HDRKIT_DATA/hdr`` or
    ``../shared/data/hdr``. cache_dir: synthesized scenes and computed priors (re-used across runs).
    clip: single-image pairs only: ``(lo, hi)`` range of the fraction of pixels the exposure saturates
    (drawn uniformly per crop)."""

    source: str = "training"
    hdr_root: str | None = None
    cache_dir: str = ".cache/hdrkit-train"
    crop: int = 256
    patch: int = 128
    seed: int = 0
    align: str = "homography"
    groups: list[GroupConfig] = field(default_factory=lambda: [GroupConfig()])
    val_scenes: int = 6
    val_crop: int = 256
    clip: tuple[float, float] = (0.01, 0.15)


@dataclass
class TrainConfig:
    """A training run. model: a learned method's name (``hdrkit methods``).

    Multi-stage recipes (Kalantari 2017 WIE, DFGNet) chain runs: ``model_options`` are keyword arguments of
    the network's constructor (e.g. ``{stage: weights}``; they never change the state dict's keys),
    ``init_from`` starts from another run's ``checkpoint.pt`` or a ``.safetensors`` file (only when the run
    has no checkpoint of its own yet), and ``freeze`` lists parameter-name prefixes that are not trained.
    """

    model: str
    out_dir: str
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 10000
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    loss: str = "mu_l1"
    bf16: bool = False
    threads: int | None = None
    seed: int = 0
    log_every: int = 20
    val_every: int = 500
    checkpoint_minutes: float = 5.0
    max_minutes: float | None = None
    grad_clip: float | None = 1.0
    model_options: dict = field(default_factory=dict)
    init_from: str | None = None
    freeze: list[str] = field(default_factory=list)


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise HdrkitError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise HdrkitError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(names)}")
    kw = {}
    for k, v in raw.items():
        if k == "data":
            v = _build(DataConfig, v, f"{where}.data")
        elif k == "groups":
            v = [_build(GroupConfig, g, f"{where}.groups[{i}]") for i, g in enumerate(v)]
        elif k in ("object_motion_px", "clip"):
            v = tuple(float(x) for x in v)
        kw[k] = v
    try:
        return cls(**kw)
    except TypeError as e:
        raise HdrkitError(f"{where}: {e}") from None


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a YAML training config (unknown keys are an error); ``overrides`` replace top-level keys."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as e:
        raise HdrkitError(f"{p}: cannot read the config ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise HdrkitError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    raw = dict(raw or {})
    raw.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("model", "out_dir"):
        if key not in raw:
            raise HdrkitError(f"{p}: missing required key {key!r}")
    return _build(TrainConfig, raw, str(p))


def default_data_root() -> Path:
    env = os.environ.get("HDRKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- data

def _synth(data: DataConfig, group: GroupConfig, gi: int, split: str, n: int, crop: int, seed: int,
           pairs: bool = False) -> list[Path]:
    """Synthesize (once) ``n`` scenes of one group into the cache; returns the scene folders (with ``pairs``:
    the LDR files of single-exposure LDR/HDR pairs)."""
    from hdrkit.data import find_pairs, synthesize_dataset
    from hdrkit.data.splits import split_paths

    root = Path(data.hdr_root) if data.hdr_root else default_data_root() / "hdr"
    shared = root.parent
    extra = ["pairs", list(data.clip)] if pairs else []
    key = _hash([dataclasses.asdict(group), data.source, split, n, crop, seed, gi, 2, *extra])
    out = Path(data.cache_dir) / f"{'pairs' if pairs else 'scenes'}_{split}_{key}"
    done = out / ".complete"
    if done.is_file():
        if pairs:
            return [ldr for ldr, _ in find_pairs(out / "Test" / "pairs")]
        return sorted(p for p in (out / "Test").iterdir() if p.is_dir())
    if data.source == "procedural":
        sources = None
    elif data.source == "training" or split == "validation":
        sources = split_paths(root, "validation" if split == "validation" else "training")
    else:
        raise HdrkitError(f"data.source must be 'training' or 'procedural', got {data.source!r}")
    dynamic = group.motion == "dynamic"
    if group.motion not in ("static", "dynamic"):
        raise HdrkitError(f"motion must be 'static' or 'dynamic', got {group.motion!r}")
    camera = dict(
        n_scenes=n, seed=seed, crop_size=crop, response_family=group.response,
        dorf_path=shared / "crf" / "dorf_public_151.npz" if group.response == "dorf" else None,
        emor_path=shared / "crf" / "emor.txt" if group.response == "emor" else None,
        noise_profiles_path=shared / "noise" / "darktable.json" if group.noise else None,
        jpeg_quality=group.jpeg_quality)
    if pairs:
        lo, hi = data.clip
        if not 0 <= lo <= hi < 1:
            raise HdrkitError(f"data.clip must be [lo, hi] fractions with 0 <= lo <= hi < 1, got {list(data.clip)}")
        written = synthesize_dataset(sources, out, bits=8, single_image=True, clip_quantiles=(1 - hi, 1 - lo), **camera)
        done.write_text("ok\n")
        return written
    synthesize_dataset(
        sources, out, bits=group.bits, fmt="tif" if group.bits == 16 else "png",
        global_motion=group.global_motion_px if dynamic else 0.0, moving_objects=group.moving_objects if dynamic else 0,
        object_motion_px=group.object_motion_px, nonrigid_px=group.nonrigid_px if dynamic else 0.0,
    )
    done.write_text("ok\n")
    return sorted(p for p in (out / "Test").iterdir() if p.is_dir())


@dataclass
class PreparedScene:
    """A scene ready for patches: aligned bracket, ground truth and the network's priors."""

    name: str
    ldr: torch.Tensor
    exposure_times: torch.Tensor
    hdr: torch.Tensor
    reference: int
    priors: dict
    response: object = None
    bits: int = 16


def _prepare_scene(folder: Path, model, data: DataConfig, calibrate: bool) -> PreparedScene:
    from hdrkit.align import align
    from hdrkit.data import read_kalantari_scene
    from hdrkit.data.eval_scenes import resolve_response

    scene = read_kalantari_scene(folder)
    ldr = scene.ldr.float()[None]
    times = scene.exposure_times.float()[None]
    bits = int((scene.meta or {}).get("bits", 16))
    response = resolve_response("calibrate" if calibrate else "scene", scene, ldr, times, bits)
    ref = torch.tensor([scene.reference])
    if data.align != "none":
        ldr = align(ldr, times, method=data.align, reference=scene.reference, response=response).ldr
    with torch.no_grad():
        priors = model.prepare(ldr, times, ref, response)
    return PreparedScene(scene.name, ldr[0], times[0], scene.hdr.float(), scene.reference,
                         {k: v[0].numpy() for k, v in priors.items()}, response, bits)


INVERSE_RESPONSE_SAMPLES = 1024
"""Codes at which a pair's true inverse response is sampled for networks that train on it (``linspace(0, 1, n)``)."""


def _prepare_pair(ldr_path: Path, model, shared: Path) -> PreparedScene:
    """A single-exposure pair as a one-frame scene (t = 1, reference 0); priors computed without a response.

    A network whose ``training_priors`` name ``'inverse_response'`` (SingleHDR) also gets the pair's true inverse
    response, rebuilt from the pairs' ``meta.json`` (DoRF / EMoR curves from ``shared``'s ``crf`` folder), as a
    (3, ``INVERSE_RESPONSE_SAMPLES``) per-scene prior: patches keep it whole and permute it with the colours.
    """
    from hdrkit.data.synthetic import response_from_info
    from hdrkit.io import read_hdr, read_ldr

    ldr = read_ldr(ldr_path).image.float()[None, None]
    hdr = read_hdr(ldr_path.with_suffix(".hdr")).float()
    times, ref = torch.ones(1, 1), torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        priors = {k: v[0].numpy() for k, v in model.prepare(ldr, times, ref, None).items()}
    if "inverse_response" in getattr(model, "training_priors", ()):
        info = json.loads((ldr_path.parent / "meta.json").read_text())[ldr_path.stem]["response"]
        response = response_from_info(info, shared / "crf" / "dorf_public_151.npz", shared / "crf" / "emor.txt")
        z = torch.linspace(0, 1, INVERSE_RESPONSE_SAMPLES, dtype=torch.float64).view(1, 1, -1, 1).expand(1, 3, -1, 1)
        priors["inverse_response"] = response.inverse(z).reshape(3, -1).float().numpy()
    return PreparedScene(ldr_path.stem, ldr[0], times[0], hdr, 0, priors, None, 8)


def is_single_image(model) -> bool:
    """Whether ``model`` takes one frame (``frames == 1``): it trains and validates on LDR/HDR pairs."""
    return getattr(model, "frames", None) == 1


def build_scenes(cfg: TrainConfig, model, split: str = "training", progress: bool = False) -> list[PreparedScene]:
    """Synthesize and prepare the scenes of ``split`` (``training``: the config's groups; ``validation``:
    ``val_scenes`` dynamic gamma 2.2 16-bit scenes from the validation radiance maps, seed 2017; for a
    single-image network, LDR/HDR pairs: see the module docstring)."""
    data = cfg.data
    pairs = is_single_image(model)
    if split == "validation" and pairs:
        plan = [(GroupConfig(scenes=data.val_scenes, response="dorf", bits=8, noise=True, motion="static"), 0, 2017, data.val_crop)]
    elif split == "validation":
        g = GroupConfig(scenes=data.val_scenes, object_motion_px=(15.0, 45.0))
        plan = [(g, 0, 2017, data.val_crop)]
    else:
        plan = [(g, i, data.seed * 1000 + i, data.crop) for i, g in enumerate(data.groups)]
    if pairs:
        bad = [i for i, (g, *_) in enumerate(plan) if g.bits != 8]
        if bad:
            raise HdrkitError(f"data.groups[{bad[0]}]: single-image pairs are 8-bit photos; set bits: 8")
    key = _hash([getattr(model, "priors_key", None) or type(model).__name__, data.align, split, 3, *(["pairs"] if pairs else []),
                 *getattr(model, "training_priors", ())])
    shared = (Path(data.hdr_root) if data.hdr_root else default_data_root() / "hdr").parent
    scenes = []
    for g, gi, seed, crop in plan:
        folders = _synth(data, g, gi, split, g.scenes, crop, seed, pairs)
        rng = np.random.default_rng([seed, 99])
        for folder in folders:
            calibrate = bool(rng.random() < g.calibrate) and not pairs
            group_dir = folder.parents[2 if pairs else 1].name
            cache = Path(data.cache_dir) / f"prepared_{key}" / f"{group_dir}_{folder.stem if pairs else folder.name}_{int(calibrate)}.npz"
            if cache.is_file():
                z = np.load(cache, allow_pickle=False)
                meta = json.loads(str(z["meta"]))
                priors = {k[len("prior_"):]: z[k] for k in z.files if k.startswith("prior_")}
                scenes.append(PreparedScene(meta["name"], torch.from_numpy(z["ldr"]), torch.from_numpy(z["times"]),
                                            torch.from_numpy(z["hdr"]), meta["reference"], priors, None, meta["bits"]))
                continue
            s = _prepare_pair(folder, model, shared) if pairs else _prepare_scene(folder, model, data, calibrate)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, ldr=s.ldr.numpy(), times=s.exposure_times.numpy(), hdr=s.hdr.numpy(),
                     meta=json.dumps({"name": s.name, "reference": s.reference, "bits": s.bits}),
                     **{f"prior_{k}": v for k, v in s.priors.items()})
            os.replace(tmp, cache)
            scenes.append(s)
            if progress:
                print(f"prepared {len(scenes)} {split} scenes", file=sys.stderr, end="\r")
    return scenes


# ---------------------------------------------------------------- fit / evaluate

def _lr_factor(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def _batch(ds, indices) -> dict:
    # numpy stacking: torch.stack of small tensors is very slow with 2 threads on a loaded machine
    items = [ds[int(i)] for i in indices]
    stack = lambda xs: torch.from_numpy(np.stack([np.asarray(x) for x in xs]))  # noqa: E731
    out = {k: stack([it[k] for it in items]) for k in ("ldr", "exposure_times", "hdr", "reference")}
    if "priors" in items[0]:
        out["priors"] = {k: stack([it["priors"][k] for it in items]) for k in items[0]["priors"]}
    return out


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def val_metrics(model) -> tuple[str, str]:
    """The two numbers ``evaluate`` returns for ``model``: PSNR-mu / PSNR-L, or for single-image networks the
    log2 RMSE over clipped / well-exposed pixels (``hdrkit.metrics.SINGLE_IMAGE_METRICS``)."""
    from hdrkit.metrics import SINGLE_IMAGE_METRICS

    return SINGLE_IMAGE_METRICS if is_single_image(model) else ("psnr_mu", "psnr_l")


def evaluate(model, scenes: list[PreparedScene], dtype: str = "fp32") -> dict[str, float]:
    """Mean scores (:func:`val_metrics`) of ``model`` over prepared scenes (whole scenes, priors as prepared)."""
    from hdrkit.metrics import log2_rmse_regions, psnr_l, psnr_mu
    from hdrkit.models.inference import DTYPES

    model.eval()
    dev = next(model.parameters()).device
    single = is_single_image(model)
    rows = []
    with torch.inference_mode():
        for s in scenes:
            priors = {k: torch.as_tensor(v)[None].to(dev) for k, v in s.priors.items()}
            ad = DTYPES[dtype]
            with torch.autocast(dev.type, dtype=ad or torch.float32, enabled=ad is not None):
                out = model.refine(s.ldr[None].to(dev), s.exposure_times[None].to(dev),
                                   torch.tensor([s.reference], device=dev), **priors)
            out = out.float()[0].cpu()
            if single:
                rows.append(log2_rmse_regions(out, s.hdr, s.ldr[s.reference]))
            else:
                rows.append({"psnr_mu": float(psnr_mu(out, s.hdr)), "psnr_l": float(psnr_l(out, s.hdr))})
    return {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else math.nan
            for k in val_metrics(model)}


def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0, None
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world, tdist.get_rank(), tdist


def fit(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> dict:
    """Train ``cfg.model``; returns ``{'step', 'loss', 'val'}`` of the last step. See the module docstring."""
    from hdrkit.data import PatchDataset
    from hdrkit.losses import LOSSES, UNCLIPPED_LOSSES
    from hdrkit.methods import get_method
    from hdrkit.models import MODELS, MergeNet

    card = get_method(cfg.model)
    if not card.learned or cfg.model not in MODELS:
        raise HdrkitError(f"method {cfg.model!r} is not a trainable network; choose from {', '.join(MODELS)}")
    if cfg.loss not in LOSSES:
        raise HdrkitError(f"unknown loss {cfg.loss!r}: choose from {', '.join(LOSSES)}")
    world, rank, tdist = _dist()
    if cfg.batch_size % world:
        raise HdrkitError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    try:
        model = MODELS[cfg.model](**cfg.model_options)
    except TypeError as e:
        raise HdrkitError(f"model_options {cfg.model_options} do not fit {cfg.model!r}: {e}") from None
    if (is_single_image(model) and cfg.loss not in UNCLIPPED_LOSSES
            and type(model).training_loss is MergeNet.training_loss):
        raise HdrkitError(f"{cfg.model!r} is a single-image network: loss {cfg.loss!r} clips the radiance at 1 and "
                          f"cannot learn highlights; use loss: {UNCLIPPED_LOSSES[0]}")
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else torch.device("cpu")
    if tdist is not None and rank != 0:
        tdist.barrier()  # rank 0 synthesizes and caches the scenes first; the others read the cache
    scenes = build_scenes(cfg, model, "training", progress=progress and rank == 0)
    if tdist is not None and rank == 0:
        tdist.barrier()
    val = build_scenes(cfg, model, "validation") if cfg.val_every and rank == 0 else []
    ds = PatchDataset(scenes, patch_size=cfg.data.patch, seed=cfg.data.seed)
    if len({s.ldr.shape[0] for s in scenes}) != 1:
        raise HdrkitError("training scenes must all have the same number of frames")
    frozen = [n for n, p in model.named_parameters() if any(n.startswith(f) for f in cfg.freeze)]
    if cfg.freeze and not frozen:
        raise HdrkitError(f"freeze: no parameter of {cfg.model!r} starts with {', '.join(cfg.freeze)}")
    for n, p in model.named_parameters():
        p.requires_grad_(n not in frozen)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    step = 0
    ckpt = out / "checkpoint.pt"
    if cfg.init_from and not (resume and ckpt.is_file()):
        _init_weights(model, cfg.init_from)
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
    model.to(device)
    net = model
    if tdist is not None:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if rank == 0:
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    log_path = out / "log.csv"
    new_log = not log_path.is_file() or step == 0
    logf = open(log_path, "w" if new_log else "a", newline="") if rank == 0 else None
    writer = csv.writer(logf) if logf else None
    vkeys = val_metrics(model)
    if writer and new_log:
        writer.writerow(["step", "loss", "lr", "seconds", "patches_per_s", *(f"val_{k}" for k in vkeys)])
    loss_fn = LOSSES[cfg.loss]
    custom = type(model).training_loss is not MergeNet.training_loss
    if custom and tdist is not None:
        raise HdrkitError(f"{cfg.model!r} with {cfg.model_options} trains with its own loss, which runs in one process only")
    per_epoch = max(1, len(ds) // cfg.batch_size)
    local = cfg.batch_size // world
    start = time.monotonic()
    last_ckpt = start
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", unit="step", file=sys.stderr)
    run_loss, run_n, t_log = 0.0, 0, time.monotonic()
    last = {"step": step, "loss": None, "val": None}

    def save():
        if rank == 0:
            _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                          "config": dataclasses.asdict(cfg)}, ckpt)

    stop = False
    while step < cfg.steps and not stop:
        epoch, j = divmod(step, per_epoch)
        ds.set_epoch(epoch)
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(ds))
        idx = perm[j * cfg.batch_size:(j + 1) * cfg.batch_size][rank * local:(rank + 1) * local]
        b = _batch(ds, idx)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * _lr_factor(cfg, step)
        model.train()
        priors = {k: v.to(device) for k, v in b.get("priors", {}).items()}
        args = (b["ldr"].to(device), b["exposure_times"].to(device), b["reference"].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            if custom:
                loss = model.training_loss(*args, b["hdr"].to(device), priors=priors, loss_fn=loss_fn)
            else:
                loss = loss_fn(net(*args, priors=priors).float(), b["hdr"].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        lv = float(loss.detach())
        if tdist is not None:
            t = torch.tensor([lv], device=device)
            tdist.all_reduce(t)
            lv = float(t) / world
        run_loss += lv
        run_n += 1
        last["step"], last["loss"] = step, lv
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.4f}")
        if writer and (step % cfg.log_every == 0 or step == cfg.steps):
            dt = time.monotonic() - t_log
            writer.writerow([step, f"{run_loss / run_n:.6f}", f"{opt.param_groups[0]['lr']:.3g}",
                             f"{time.monotonic() - start:.1f}", f"{run_n * cfg.batch_size / max(dt, 1e-9):.2f}", "", ""])
            logf.flush()
            run_loss, run_n, t_log = 0.0, 0, time.monotonic()
        if val and (step % cfg.val_every == 0 or step == cfg.steps):
            r = evaluate(model, val)
            last["val"] = r
            writer.writerow([step, "", "", f"{time.monotonic() - start:.1f}", "", *(f"{r[k]:.3f}" for k in vkeys)])
            logf.flush()
        now = time.monotonic()
        if cfg.max_minutes is not None and now - start > 60 * cfg.max_minutes:
            stop = True
        if tdist is not None:
            flag = torch.tensor([1.0 if stop else 0.0])
            tdist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        if now - last_ckpt > 60 * cfg.checkpoint_minutes or stop or step == cfg.steps:
            save()
            last_ckpt = now
    if bar:
        bar.close()
    if logf:
        logf.close()
    if tdist is not None:
        tdist.barrier()
    return last


def _init_weights(model, path: str) -> None:
    """Load a ``checkpoint.pt`` (its model) or ``.safetensors`` weights into ``model`` (keys must match)."""
    from hdrkit.models.weights import load_weights

    p = Path(path)
    if not p.is_file():
        raise HdrkitError(f"init_from: {p} does not exist; train the previous stage first")
    if p.suffix == ".safetensors":
        load_weights(model, p)
        return
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
    except (OSError, RuntimeError, EOFError, KeyError) as e:
        raise HdrkitError(f"init_from: {p} is not a checkpoint of this network ({str(e).splitlines()[0]})") from None


def export_weights(checkpoint: str | Path, path: str | Path, dtype: torch.dtype | None = None) -> str:
    """Write a checkpoint's model as packaged safetensors weights; returns the sha256."""
    from hdrkit.models import MODELS
    from hdrkit.models.weights import save_weights

    if isinstance(dtype, str):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise HdrkitError(f"{checkpoint}: not a readable training checkpoint ({str(e).splitlines()[0]})") from None
    cfg = state["config"]
    model = MODELS[cfg["model"]]()
    model.load_state_dict(state["model"])
    return save_weights(model, path, metadata={"model": cfg["model"], "step": state["step"]}, dtype=dtype)
