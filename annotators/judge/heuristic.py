"""The offline judge (CPU, no model): what pixels can show about an edit triplet.

Measurements, on the images downscaled to at most ~1 MP (grey = luma, D = per-pixel max |tgt - src| over RGB):

- region R = the mask when there is one, else the whole image (global edits: tone, style).
- changed_frac   = fraction of R with D > 8/255 (the shard format's changed-pixel threshold).
- psnr_outside, ssim_outside = PSNR and mean SSIM (Gaussian 11x11, sigma 1.5, the usual constants) outside the
  mask, eroded by 7 px so SSIM windows straddling the mask border do not count as "not preserved".
- structure = mean of SSIM's structure term (sigma_xy + C3) / (sigma_x sigma_y + C3) over the image: the
  correlation of local patterns, insensitive to the brightness and contrast changes a tone edit is made of.
- target_std = std of the target's grey (a blank or flat output has almost none).
- clipped_excess = fraction of target pixels with a channel at 0 or 255, minus the source's fraction.
- sharpness_ratio = target / source of (variance of the Laplacian / grey variance): blur, not contrast.

Scores, with ramp(x, a, b) = clip((x - a) / (b - a), 0, 1) * 10:

- edit_success = ramp(changed_frac, 0, 0.3)
- not_over_edited = min(ramp(psnr_outside, 20, 35), ramp(ssim_outside, 0.6, 0.95)) for local edits,
                    ramp(structure, 0.5, 0.9) for global edits
- naturalness = min(ramp(target_std, 4, 20), 10 - ramp(clipped_excess, 0.02, 0.22))
- no_artifacts = ramp(sharpness_ratio, 0, 0.4)
- SC = min(edit_success, not_over_edited); PQ = min(naturalness, no_artifacts); O = sqrt(SC * PQ)

This mirrors VIEScore's structure (each score the min of two criteria) so thresholds mean roughly the same on
both judges; but it cannot read the instruction: a change of the right pixels in the wrong way scores well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from annotators.judge.result import JudgeResult

CHANGED_THRESHOLD = 8 / 255
MAX_AREA = 1024 * 1024
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_C3 = _C2 / 2


def ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 10.0)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


# Per-pixel max/min over the three channels by elementwise ops: numpy's strided reduce over a last axis of 3
# was most of the judge's time.
def _channel_max(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _channel_min(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(x[..., 0], x[..., 1]), x[..., 2])


def _clipped_fraction(rgb: np.ndarray) -> float:
    return float(np.mean((_channel_min(rgb) == 0) | (_channel_max(rgb) == 255)))


def ssim_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SSIM and its structure term for two grey float images in 0..255 (Wang et al. 2004)."""

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = np.maximum(blur(a * a) - mu_a * mu_a, 0.0)
    var_b = np.maximum(blur(b * b) - mu_b * mu_b, 0.0)
    cov = blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    structure = (cov + _C3) / (np.sqrt(var_a * var_b) + _C3)
    return ssim, structure


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two equally shaped uint8 pixel sets; capped at 100 for identical inputs."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _sharpness(grey: np.ndarray) -> float:
    var = float(grey.var())
    return float(cv2.Laplacian(grey, cv2.CV_32F).var()) / var if var > 1e-6 else 0.0


def _bounded(rgb: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    h, w = rgb.shape[:2]
    if h * w <= MAX_AREA:
        return rgb, mask
    scale = (MAX_AREA / (h * w)) ** 0.5
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return small, None if mask is None else cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def measure(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """source/target: HxWx3 uint8 RGB of equal size; mask: HxW uint8 (255 = edited) or None (global edit)."""
    if source.shape != target.shape:
        raise ValueError(f"source {source.shape} and target {target.shape} differ in size")
    src, mask_small = _bounded(source, mask)
    tgt, _ = _bounded(target, mask)
    diff = _channel_max(cv2.absdiff(src, tgt)).astype(np.float32) / 255.0
    changed = diff > CHANGED_THRESHOLD
    region = mask_small > 127 if mask_small is not None else np.ones(changed.shape, bool)
    g_src, g_tgt = _grey(src), _grey(tgt)
    ssim, structure = ssim_maps(g_src, g_tgt)
    clipped_src, clipped_tgt = _clipped_fraction(src), _clipped_fraction(tgt)
    src_sharp = _sharpness(g_src)
    m: dict[str, float] = {
        "changed_frac": float(changed[region].mean()) if region.any() else 0.0,
        "mean_abs_diff": float(diff[region].mean()) if region.any() else 0.0,
        "structure": float(structure.mean()),
        "target_std": float(g_tgt.std()),
        "clipped_excess": clipped_tgt - clipped_src,
        "sharpness_ratio": _sharpness(g_tgt) / src_sharp if src_sharp > 0 else 1.0,
    }
    if mask_small is not None:
        outside = cv2.erode((~region).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        if outside.any():
            m["psnr_outside"] = psnr(src[outside], tgt[outside])
            m["ssim_outside"] = float(ssim[outside].mean())
            m["outside_frac"] = float(outside.mean())
    return m


def score(m: dict[str, float]) -> dict[str, float]:
    """Measurements -> the four sub-scores (see the module docstring)."""
    if "psnr_outside" in m:
        not_over = min(ramp(m["psnr_outside"], 20, 35), ramp(m["ssim_outside"], 0.6, 0.95))
    else:
        not_over = ramp(m["structure"], 0.5, 0.9)
    return {
        "edit_success": ramp(m["changed_frac"], 0.0, 0.3),
        "not_over_edited": not_over,
        "naturalness": min(ramp(m["target_std"], 4, 20), 10 - ramp(m["clipped_excess"], 0.02, 0.22)),
        "no_artifacts": ramp(m["sharpness_ratio"], 0.0, 0.4),
    }


class HeuristicJudge:
    # Compared by the filter before reusing a manifest's scores: bump with any change to measure() or score().
    name = "heuristic-v1"

    def judge(self, source: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> JudgeResult:
        m = measure(source, target, mask)
        s = score(m)
        sc = min(s["edit_success"], s["not_over_edited"])
        pq = min(s["naturalness"], s["no_artifacts"])
        return JudgeResult.scored(round(sc, 3), round(pq, 3), {**m, **s})


@dataclass
class Signature:
    """What two samples must share to be near-duplicates: the same scene, edited the same way."""

    source_phash: np.ndarray  # 8 bytes, cv2.img_hash.pHash of the source
    change_map: np.ndarray  # 16x16 mean |target - source| of grey, float32: where the edit happened
    lab_shift: np.ndarray  # 8x8x3 mean (target - source) in Lab, float32: which way colours moved

    @classmethod
    def of(cls, source: np.ndarray, target: np.ndarray) -> Signature:
        # pHash alone sees structure only: every edit of one photo (tone variants, removals of two different
        # objects) shares it. Comparing the edit itself, where and in which direction the pixels changed,
        # tells "same photo, same edit" (a duplicate) from "same photo, another edit" (a valid sample).
        src, tgt = _bounded(source, None)[0], _bounded(target, None)[0]
        # Full resolution for the change map (a blur changes pixels but not their local means); 64x64 is
        # plenty for the colour shift and saves two full-size Lab conversions.
        change = cv2.absdiff(_grey(tgt), _grey(src))

        def lab(rgb: np.ndarray) -> np.ndarray:
            small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)
            return cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)

        return cls(
            cv2.img_hash.pHash(source)[0],
            cv2.resize(change, (16, 16), interpolation=cv2.INTER_AREA),
            cv2.resize(lab(tgt) - lab(src), (8, 8), interpolation=cv2.INTER_AREA),
        )


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def change_difference(a: np.ndarray, b: np.ndarray) -> float:
    # +1 grey level keeps two no-op edits (both maps ~0) comparable instead of dividing by zero.
    return float(np.abs(a - b).sum() / (a.sum() + b.sum() + 1.0))


@dataclass
class NearDuplicateIndex:
    """Flags a sample whose source and edit look like an earlier sample's (first seen is the original).

    Candidates come from 8 one-byte bands of the source pHash: two hashes within `max_bits` <= 7 differ in at
    most 7 bytes, so they share a band (pigeonhole) and no pair is missed without comparing all pairs.
    """

    max_bits: int = 6
    # sum |change_a - change_b| / (sum change_a + sum change_b): 0 for the same edit, 1 for disjoint edits.
    # Relative, so a small local edit counts as much as a global one. A re-encoded copy of a photo with the
    # same edit measures 0.00-0.09 on the example photos; removals in two different places measure 1.0.
    max_change_diff: float = 0.12
    max_lab_diff: float = 1.0  # Lab units, mean over the 8x8 shift; ~1 is a just-visible difference
    _bands: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    _sigs: dict[str, Signature] = field(default_factory=dict)

    def add(self, sample_id: str, sig: Signature) -> str | None:
        """Registers the sample; returns the id of the sample it duplicates, or None."""
        bands = [(i, int(v)) for i, v in enumerate(sig.source_phash)]
        seen: set[str] = set()
        for band in bands:
            for other in self._bands.get(band, []):
                if other in seen:
                    continue
                seen.add(other)
                o = self._sigs[other]
                if (
                    hamming(sig.source_phash, o.source_phash) <= self.max_bits
                    and change_difference(sig.change_map, o.change_map) <= self.max_change_diff
                    and float(np.abs(sig.lab_shift - o.lab_shift).mean()) <= self.max_lab_diff
                ):
                    return other
        self._sigs[sample_id] = sig
        for band in bands:
            self._bands.setdefault(band, []).append(sample_id)
        return None
