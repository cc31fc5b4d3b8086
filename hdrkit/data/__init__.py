"""Datasets: a built-in procedural HDR scene, synthetic brackets with motion and noise,
readers for the Kalantari 2017 layout and generic folders, and training patches."""

from hdrkit.data.folders import BracketFolderDataset, Pair, PairsDataset, find_pairs, read_bracket_folder
from hdrkit.data.kalantari2017 import KalantariDataset, Scene, read_kalantari_scene, write_kalantari_scene
from hdrkit.data.noise_profiles import NoiseProfile, load_noise_profiles, sample_noise_profile
from hdrkit.data.patches import PatchDataset
from hdrkit.data.procedural import procedural_scene
from hdrkit.data.synthetic import (
    SyntheticBracket,
    normalize_scene,
    sample_response,
    synthesize_bracket,
    synthesize_dataset,
)
from hdrkit.data.transforms import Augmentation, apply_augmentation, sample_augmentation

__all__ = [
    "Augmentation",
    "BracketFolderDataset",
    "KalantariDataset",
    "NoiseProfile",
    "Pair",
    "PairsDataset",
    "PatchDataset",
    "Scene",
    "SyntheticBracket",
    "apply_augmentation",
    "find_pairs",
    "load_noise_profiles",
    "normalize_scene",
    "procedural_scene",
    "read_bracket_folder",
    "read_kalantari_scene",
    "sample_augmentation",
    "sample_noise_profile",
    "sample_response",
    "synthesize_bracket",
    "synthesize_dataset",
    "write_kalantari_scene",
]
