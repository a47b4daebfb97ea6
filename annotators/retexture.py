"""The `retexture` tool: make an object look as if it were made of another material.

Offline backend: texture transfer lit by the object's own shading.

- The surface: a procedural swatch of the material (tasks.materials), laid over the object along its shape.
  The shape is the `depth` tool's: its slopes give surface normals, and the texture is looked up where the
  normal points, as if wrapped onto the object, so the pattern crowds towards the silhouette and reads as
  going round it.
- The light: the photo's own lightness inside the object with the old paint taken out (retinex_shading:
  paint changes in steps, light smoothly), which keeps the shading (the lit side, the shadowed side, the
  contact shadow), divided by its typical value. The swatch is multiplied by it.
- Gloss: shiny materials keep the photo's sharp highlights and reflect the object's surroundings (the photo
  without the object, blurred and looked up along the normals); metals are contrasty, tint what they
  reflect and get a highlight where they face the light; glass shows what is behind the object (its
  surroundings filled in across it), bent by the normals, darker where it is seen edge-on.
- The edge: a matte of the outline pixels (edge_matte: how much of each is object, how much background),
  so the new surface is composited the way the photo mixed the old one; nothing changes farther out.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotators.registry import Plugin
from tasks.colours import rgb_to_lab
from tasks.masks import bbox_of
from tasks.materials import Material, swatch
from tasks.object_edits import masked_blur, surface_pattern

# Below this (tasks.object_edits.surface_pattern) a surface is smooth enough that its bright spots are glints.
SMOOTH_PATTERN = 0.25

BACKENDS = {
    "offline": "annotators.retexture:ShadedTextureTransfer",
    "models": "annotators.appearance_models:DepthRetexture",
}


def poisson_reconstruct(grad_x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """The image whose forward differences are closest to (grad_x, grad_y) in least squares, up to a
    constant: the Poisson equation with Neumann borders, solved in the DCT basis (OpenCV's DCT needs even
    sizes; the caller pads)."""
    divergence = grad_x.copy()
    divergence[:, 1:] -= grad_x[:, :-1]
    divergence += grad_y
    divergence[1:, :] -= grad_y[:-1, :]
    height, width = divergence.shape
    transformed = cv2.dct(divergence.astype(np.float64))
    ky = 2.0 * np.cos(np.pi * np.arange(height) / height)[:, None]
    kx = 2.0 * np.cos(np.pi * np.arange(width) / width)[None, :]
    eigen = kx + ky - 4.0
    eigen[0, 0] = 1.0
    transformed /= eigen
    transformed[0, 0] = 0.0
    return cv2.idct(transformed).astype(np.float32)


def retinex_shading(
    lightness: np.ndarray, mask: np.ndarray, radius: float, work_size: int = 192
) -> np.ndarray:
    """The object's shading, its paint taken out (Retinex): in log lightness, paint changes in steps
    (the edge of a white spot on a black wing) while light changes smoothly, so the gradients steeper than
    a threshold are dropped and the rest integrated back (poisson_reconstruct). What is left is blurred a
    little and scaled back to the crop; 0 outside the mask does not matter, callers read it inside."""
    height, width = mask.shape
    scale = min(1.0, work_size / max(height, width))
    size = (max(8, 2 * round(width * scale / 2)), max(8, 2 * round(height * scale / 2)))
    small = cv2.resize(lightness, size, interpolation=cv2.INTER_AREA)
    inside = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    log = np.log(np.clip(small, 0.02, 1.0))
    grad_x = np.zeros_like(log)
    grad_y = np.zeros_like(log)
    grad_x[:, :-1] = log[:, 1:] - log[:, :-1]
    grad_y[:-1, :] = log[1:, :] - log[:-1, :]
    # Only steps between two object pixels count; a step across the outline is the background.
    both_x = np.zeros_like(inside)
    both_y = np.zeros_like(inside)
    both_x[:, :-1] = inside[:, 1:] & inside[:, :-1]
    both_y[:-1, :] = inside[1:, :] & inside[:-1, :]
    # A step of more than 0.35 in log lightness per working pixel (a 42 % jump) is paint: shading that steep
    # is a crease or a cast shadow's edge, which this gives up to take out the prints of a ball.
    threshold = 0.35
    grad_x = np.where(both_x & (np.abs(grad_x) < threshold), grad_x, 0.0)
    grad_y = np.where(both_y & (np.abs(grad_y) < threshold), grad_y, 0.0)
    log_shading = poisson_reconstruct(grad_x, grad_y)
    # The reconstruction is known up to a constant: match the object's median lightness.
    log_shading += float(np.median(log[inside]) - np.median(log_shading[inside])) if inside.any() else 0.0
    shading = np.exp(log_shading)
    shading = masked_blur(shading, inside, max(1.0, 0.02 * radius * scale))
    return cv2.resize(shading, (width, height), interpolation=cv2.INTER_CUBIC)


def edge_matte(photo: np.ndarray, mask: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """How much of each pixel is the object, and the background colour behind it, for a band of
    ``band`` pixels either side of the mask's outline.

    A photo's outline pixels mix the object's colour F and the background's B: I = a F + (1 - a) B. With F
    and B taken from the nearest pixels surely inside and surely outside, a = <I - B, F - B> / |F - B|^2.
    Compositing the new surface with the same a over B leaves no rim of the old colour (a blue halo around
    a candy made of wood) and no hard cut-out edge. Returns (alpha HxW, background HxWx3), both float32.
    """
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    sure_in = cv2.erode(mask.astype(np.uint8), ellipse) > 0
    sure_out = ~(cv2.dilate(mask.astype(np.uint8), ellipse) > 0)
    sigma = max(1.5, band)
    inner = np.stack([masked_blur(photo[..., c], sure_in, sigma) for c in range(3)], axis=-1)
    outer = np.stack([masked_blur(photo[..., c], sure_out, sigma) for c in range(3)], axis=-1)
    difference = inner - outer
    alpha = np.sum((photo - outer) * difference, axis=-1) / np.maximum(np.sum(difference**2, axis=-1), 1e-3)
    # Where object and background look alike the ratio is noise: fall back to the mask, softened.
    contrast = np.sqrt(np.sum(difference**2, axis=-1))
    fallback = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.8, band / 3))
    trust = np.clip((contrast - 0.05) / 0.1, 0.0, 1.0)
    alpha = trust * np.clip(alpha, 0.0, 1.0) + (1.0 - trust) * fallback
    alpha = np.where(sure_in, 1.0, np.where(sure_out, 0.0, alpha))
    # Keep the matte smooth along the outline (the ratio is noisy pixel to pixel).
    alpha = np.where(sure_in | sure_out, alpha, cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), 0.7))
    return alpha.astype(np.float32), outer.astype(np.float32)


class ShadedTextureTransfer(Plugin):
    name = "shaded_texture_transfer"
    version = "1"

    def __init__(self, models_dir: str | None = None, wrap: float = 0.35) -> None:
        super().__init__(models_dir)
        self.wrap = wrap  # how far (in object radii) the texture lookup follows the normals

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        material: Material,
        subject: str,
        depth: np.ndarray,
        seed: int,
    ) -> np.ndarray:
        box = bbox_of(mask)
        if box is None:
            return image.copy()
        radius = float(np.sqrt(mask.sum() / np.pi))
        edge = max(3, round(0.02 * radius))
        margin = edge + max(8, round(0.5 * radius))
        height, width = mask.shape
        x0, y0 = max(0, box[0] - margin), max(0, box[1] - margin)
        x1, y1 = min(width, box[2] + margin), min(height, box[3] + margin)
        crop = image[y0:y1, x0:x1]
        inside = mask[y0:y1, x0:x1]
        shape = depth[y0:y1, x0:x1].astype(np.float32)
        h, w = inside.shape
        photo = crop.astype(np.float32) / 255.0
        alpha, background = edge_matte(photo, inside, edge)
        region = alpha > 0

        # Normals of the surface z = radius * depth (the depth map is relative; the object is taken to be
        # about as deep as it is wide).
        relief = cv2.GaussianBlur(shape, (0, 0), max(1.0, radius / 20)) * radius
        dz_dy, dz_dx = np.gradient(relief)
        norm = np.sqrt(dz_dx**2 + dz_dy**2 + 1.0)
        nx, ny = -dz_dx / norm, -dz_dy / norm
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

        # The light, from the photo: the object's lightness without its paint, relative to its typical value.
        lightness = rgb_to_lab(crop)[..., 0] / 100.0
        shading = retinex_shading(lightness, inside, radius)
        typical = float(np.percentile(shading[inside], 60)) if inside.any() else 1.0
        shade = np.clip(shading / max(typical, 0.05), 0.15, 1.7)
        # Sharp highlights: much brighter than the shading around them.
        glint = np.clip((lightness - shading - 0.04) / 0.3, 0.0, 1.0) * (lightness > 0.7) * inside
        if surface_pattern(crop, inside) > SMOOTH_PATTERN:
            glint[:] = 0.0  # white paint on a patterned surface would pass for glints
        # Glints are small; a large bright patch is the old surface's paint, not light.
        count, spots, stats, _ = cv2.connectedComponentsWithStats(
            (glint > 0).astype(np.uint8), connectivity=8
        )
        large = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] > 0.01 * inside.sum()]
        glint[np.isin(spots, large)] = 0.0

        pad = round(self.wrap * radius) + 2
        albedo = swatch(material, h + 2 * pad, w + 2 * pad, radius, seed)
        map_x = (xs + pad + self.wrap * radius * nx).astype(np.float32)
        map_y = (ys + pad + self.wrap * radius * ny).astype(np.float32)
        surface = cv2.remap(albedo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

        light = light_direction(shade, inside, nx, ny)
        facing = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
        if material.transparent:
            colour = self._glass(photo, inside, surface, nx, ny, xs, ys, radius, light)
        elif material.metal:
            # Metal has no diffuse colour of its own to speak of: it is contrasty (its shading steeper than
            # paint's), tints what it reflects, and has a sharp highlight where it faces the light.
            colour = surface * (shade**1.6)[..., None] * 0.85
        else:
            colour = surface * shade[..., None]
        if material.gloss > 0:
            # The surroundings, mirrored in the surface: the photo without the object, blurred, looked up
            # along the normals.
            blurred = cv2.GaussianBlur(
                fill_from_surroundings(photo, inside, radius), (0, 0), max(2.0, radius / 6)
            )
            reflection = cv2.remap(
                blurred,
                xs + 0.9 * radius * nx,
                ys + 0.9 * radius * ny,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
            if material.metal:
                reflection = reflection * surface * 1.3  # metals colour what they reflect
            fresnel = 0.25 + 0.75 * (1.0 - facing) ** 2
            mirror = (0.3 if material.metal else 0.6) * material.gloss * fresnel
            colour = colour * (1 - mirror[..., None]) + reflection * mirror[..., None]
            colour = colour + material.gloss * glint[..., None]
            if material.metal:
                colour = colour + 0.8 * highlight(nx, ny, facing, light, 25)[..., None] * (
                    0.5 + 0.5 * surface
                )
        colour = np.clip(colour, 0.0, 1.0) * 255.0

        # Inside the band the photo's pixel is replaced by new surface over the background behind it.
        base = np.where((alpha < 1.0)[..., None], background, photo) * 255.0
        blended = base * (1.0 - alpha[..., None]) + colour * alpha[..., None]
        out = image.copy()
        out[y0:y1, x0:x1] = np.where(
            region[..., None], np.clip(np.round(blended), 0, 255).astype(np.uint8), crop
        )
        return out

    @staticmethod
    def _glass(
        photo: np.ndarray,
        inside: np.ndarray,
        tint: np.ndarray,
        nx: np.ndarray,
        ny: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        radius: float,
        light: tuple[float, float],
    ) -> np.ndarray:
        """What is behind the object (its surroundings, filled in across it), bent by the surface and
        tinted; a darker edge where glass is seen edge-on; a highlight where the surface faces the light."""
        behind = fill_from_surroundings(photo, inside, radius)
        bent = cv2.remap(
            behind,
            xs + 0.3 * radius * nx,
            ys + 0.3 * radius * ny,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        facing = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
        edge = (1.0 - facing) ** 4
        return (
            bent * tint * (1.0 - 0.45 * edge[..., None])
            + 0.9 * highlight(nx, ny, facing, light, 60)[..., None]
        )


def highlight(
    nx: np.ndarray, ny: np.ndarray, facing: np.ndarray, light: tuple[float, float], shininess: float
) -> np.ndarray:
    """Blinn-Phong highlight for a light from the photo's lit side (light_direction) and a viewer straight
    ahead; ``shininess`` narrows it."""
    half = np.array([light[0], light[1], 2.0])
    half /= np.linalg.norm(half)
    return np.clip(nx * half[0] + ny * half[1] + facing * half[2], 0.0, 1.0) ** shininess


def fill_from_surroundings(photo: np.ndarray, inside: np.ndarray, radius: float) -> np.ndarray:
    """The object's pixels replaced by its surroundings: blurs of the outside pixels at three sizes, the
    finest used where it has support (near the outline), the coarsest deep inside."""
    outside = ~inside
    filled = None
    for sigma in (radius / 2, radius / 6, radius / 16):
        sigma = max(1.5, sigma)
        support = cv2.GaussianBlur(outside.astype(np.float32), (0, 0), sigma)
        blur = np.stack([masked_blur(photo[..., c], outside, sigma) for c in range(3)], axis=-1)
        if filled is None:
            filled = blur
        else:
            weight = np.clip(2.0 * support, 0.0, 1.0)[..., None]
            filled = weight * blur + (1.0 - weight) * filled
    return np.where(inside[..., None], filled, photo).astype(np.float32)


def light_direction(
    shade: np.ndarray, inside: np.ndarray, nx: np.ndarray, ny: np.ndarray
) -> tuple[float, float]:
    """Where the light comes from, in the image plane: the normals of the object's lit pixels, averaged.
    (Shading is brightest where the surface faces the light.)"""
    lit = inside & (shade > np.percentile(shade[inside], 80)) if inside.any() else inside
    if not lit.any():
        return (-0.3, -0.5)
    direction = np.array([nx[lit].mean(), ny[lit].mean()])
    length = float(np.linalg.norm(direction))
    return (-0.3, -0.5) if length < 1e-3 else tuple(0.6 * direction / length)
