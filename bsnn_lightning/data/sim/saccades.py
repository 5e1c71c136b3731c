"""A still image seen by a DVS that moves along N-MNIST's saccades: the scene of the embedded digits.

N-MNIST (Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets
using saccades", Frontiers in Neuroscience 9:437) was recorded by moving an ATIS event camera in
front of an LCD showing MNIST digits, along three ~100 ms saccades that trace a triangle; each
recording covers a 34 x 34 pixel field. A static scene only produces events where the motion sweeps
an intensity edge across pixels, so the events outline the digit; ON events lead a bright stroke
along the motion, OFF events trail it. This module simulates the same recording for any grayscale image
(:mod:`~bsnn_lightning.data.digits` uses it for the 8 x 8 digits that ship inside scikit-learn):

1. **Scene.** A digit (values 0..16, stroke = 16) becomes intensities ``I = v / 16`` in [0, 1]: a
   bright stroke on a dark screen, as MNIST is displayed in N-MNIST. It is upsampled by
   ``upsample`` (bilinear, pixel centres aligned, zero = dark outside the image) and centred on the
   sensor. Default ``upsample = 3``: a 24 x 24 digit in a 34 x 34 field. sklearn's digits fill
   their 8 x 8 box (MNIST digits fill only 20 of 28 pixels), so x3 gives about the field share
   of N-MNIST and leaves room for the saccades; x4 (32 px) would push strokes off the sensor.
2. **Saccades.** The scene moves, at constant speed per saccade, through the triangle
   ``A = (-a/2, +a/2) -> B = (0, -a/2) -> C = (+a/2, +a/2) -> A`` (``(dx, dy)`` in pixels, y down;
   up-right, down-right, then back left), one saccade per ``saccade_us`` (default 100 ms, 300 ms
   in all, as in N-MNIST). Default amplitude ``a = 4`` px: the 24 px digit, shifted by up to
   +-2 px (and smeared by one more pixel between pixel positions), covers pixels 3..30 of the
   34 px field, as N-MNIST's 28 px images move within 34 px. Sub-pixel
   positions are rendered by bilinear interpolation; parts of a scene outside the sensor are
   not seen, as with a real camera (with the defaults, nothing of a digit leaves the field).
3. **DVS pixel model.** The scene is sampled every ``step_us`` (default 1 ms; the saccade moves
3. **Events.** The scene is sampled every ``step_us`` (default 1 ms; the saccade moves ~0.06 px per step, so
   edges cross pixels over many steps, as with a real sensor's continuous response) and run through the DVS
   pixel model of :mod:`~bsnn_lightning.data.sim.pixel` with ``C = 0.2`` (a ~22 % intensity change, of the
   order of real DVS thresholds: the DVS128 sensor is specified at ~15 % contrast) and ``ε = 0.2`` (at most
   8 events per pixel for a full black-to-white edge, about what a real pixel manages while an edge sweeps it).

Speed: images are simulated 64 at a time, vectorised over images and pixels, with a Python loop over the 300
time steps only; rendering and the pixel model run in float32 here
(:func:`~bsnn_lightning.data.sim.pixel.dvs_events_from_frames`, the model on explicit frames, uses float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pixel import PixelSettings, as_generator, assemble_events, check_scene_config, pixel_model_steps

__all__ = [
    "SaccadeConfig",
    "check_intensity_range",
    "render_centred",
    "saccade_offsets",
    "simulate_saccade_events",
    "simulate_saccades",
    "static_image",
]

_CHUNK = 64  # images simulated together (see simulate_saccades)


@dataclass(frozen=True)
class SaccadeConfig(PixelSettings):
    """Every parameter of the saccade simulation (all of them key the on-disk cache).

    Attributes:
        sensor_size: ``(width, height)`` of the simulated sensor, N-MNIST's 34 x 34.
        upsample: integer upsampling factor of the image (bilinear); 8 x 8 -> 24 x 24.
        saccade_amplitude: width and height of the triangular saccade path, in sensor pixels.
        saccade_us: duration of each of the three saccades, µs (N-MNIST: ~100 ms).
        step_us: sampling period of the pixel model, µs; must divide ``saccade_us``.
        contrast_threshold: ``C``, log-intensity change per event (natural log units).
        eps: ``ε`` in ``log(I + ε)``, dark current / screen black level, relative to white = 1.

    Example:
        >>> config = SaccadeConfig(sensor_size=(8, 8), upsample=1, saccade_amplitude=2, saccade_us=4000)
        >>> config.saccade_amplitude, config.steps_per_saccade, config.duration_us
        (2.0, 4, 12000)
        >>> SaccadeConfig(step_us=3000)
        Traceback (most recent call last):
            ...
        ValueError: expected step_us to divide saccade_us, got saccade_us = 100000, step_us = 3000
    """

    sensor_size: tuple[int, int] = (34, 34)
    upsample: int = 3
    saccade_amplitude: float = 4.0
    saccade_us: int = 100_000

    def __post_init__(self) -> None:
        check_scene_config(self, ("upsample", "saccade_us", "step_us"))
        if self.saccade_us % self.step_us:
            raise ValueError(
                f"expected step_us to divide saccade_us, got saccade_us = {self.saccade_us}, "
                f"step_us = {self.step_us}"
            )
        if not (np.isfinite(self.saccade_amplitude) and self.saccade_amplitude >= 0):
            raise ValueError(f"expected saccade_amplitude >= 0 (pixels), got {self.saccade_amplitude!r}")
        object.__setattr__(self, "saccade_amplitude", float(self.saccade_amplitude))  # 4 and 4.0: one cache key

    @property
    def steps_per_saccade(self) -> int:
        return self.saccade_us // self.step_us

    @property
    def duration_us(self) -> int:
        """Length of a recording: three saccades."""
        return 3 * self.saccade_us


def simulate_saccade_events(
    image: np.ndarray,
    rng: int | np.random.Generator = 0,
    config: SaccadeConfig | None = None,
) -> np.ndarray:
    """Simulate a DVS watching a grayscale ``image`` move along N-MNIST-like saccades.

    Args:
        image: ``[h, w]`` intensities in ``[0, 1]`` (0 = dark, 1 = white), any size.
        rng: a numpy Generator, or an int seeding ``np.random.default_rng``; used only for the
            sub-step timestamp jitter.
        config: simulation parameters; defaults to :class:`SaccadeConfig()` (see the module
            docstring for the model and the reasons for the defaults).

    Returns:
        :data:`EVENT_DTYPE` array sorted by ``t``, with ``0 <= t < config.duration_us``.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((4, 4))
        >>> image[1:3, 1:3] = 1.0  # a white square on black
        >>> config = SaccadeConfig(sensor_size=(8, 8), upsample=1, saccade_amplitude=2.0, saccade_us=4000)
        >>> events = simulate_saccade_events(image, rng=0, config=config)
        >>> len(events), bool((events["t"] < config.duration_us).all())
        (252, True)
        >>> events[:2].tolist()  # (t, x, y, p)
        [(2, 4, 5, 1), (16, 3, 3, 1)]
    """
    config = config or SaccadeConfig()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a 2-D grayscale image [h, w], got shape {image.shape}")
    check_intensity_range(image, "image")
    return simulate_saccades(image[None], [as_generator(rng)], config)[0]


def simulate_saccades(
    images: np.ndarray, rngs: list[np.random.Generator], config: SaccadeConfig
) -> list[np.ndarray]:
    """Simulate ``images [N, h, w]`` together; image ``i`` uses ``rngs[i]``.

    Rendering and the pixel model are elementwise, so each image's events do not depend on the
    other images in the batch. Images are processed ``_CHUNK`` at a time so that the per-step
    arrays stay in the CPU cache (one chunk of 34 x 34 float64 pixels ~ 0.6 MB): the loop over
    time steps is memory-bound, and whole-set arrays made it ~3x slower.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((4, 4))
        >>> image[1:3, 1:3] = 1.0
        >>> config = SaccadeConfig(sensor_size=(8, 8), upsample=1, saccade_amplitude=2.0, saccade_us=4000)
        >>> rngs = [np.random.default_rng(0), np.random.default_rng(1)]
        >>> [len(events) for events in simulate_saccades(np.stack([image, 0.5 * image]), rngs, config)]
        [252, 182]
    """
    offsets = saccade_offsets(config)
    out: list[np.ndarray] = []
    for lo in range(0, len(images), _CHUNK):
        canvas, pad, origin = _scene_canvas(images[lo : lo + _CHUNK], config)
        frames = (_shift_bilinear(canvas, pad, origin + d, config.sensor_size) for d in offsets)
        steps = pixel_model_steps(frames, config.contrast_threshold, config.eps)
        out += assemble_events(steps, len(canvas), config.step_us, rngs[lo : lo + _CHUNK])
    return out


def static_image(image: np.ndarray, config: SaccadeConfig | None = None) -> np.ndarray:
    """One image as the simulator's scene at rest: upsampled, centred on the sensor, ``[1, H, W]``.

    This is the picture the saccades move around (offset 0, the centre of the triangle's
    bounding box), in [0, 1], float32, for models that see the same image at every time step.

    Example:
        >>> import numpy as np
        >>> config = SaccadeConfig(sensor_size=(8, 8), upsample=2)
        >>> scene = static_image(np.ones((2, 2)), config)  # a 2 x 2 white image, upsampled (bilinear) to 4 x 4
        >>> scene.shape, scene.dtype, float(scene.max()), float(scene[0, 0, 0])
        ((1, 8, 8), dtype('float32'), 1.0, 0.0)
        >>> static_image(np.full((2, 2), 2.0))
        Traceback (most recent call last):
            ...
        ValueError: expected image intensities in [0, 1], got range [2.0, 2.0]
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a 2-D grayscale image [h, w], got shape {image.shape}")
    check_intensity_range(image, "image")
    return render_centred(image[None], config or SaccadeConfig()).astype(np.float32)


def render_centred(images: np.ndarray, config: SaccadeConfig) -> np.ndarray:
    """``images [N, h, w]`` at rest (offset 0), upsampled and centred on the sensor: ``[N, H, W]`` float64.

    Example:
        >>> import numpy as np
        >>> config = SaccadeConfig(sensor_size=(6, 4), upsample=1)
        >>> render_centred(np.ones((1, 2, 2)), config)[0]
        array([[0., 0., 0., 0., 0., 0.],
               [0., 0., 1., 1., 0., 0.],
               [0., 0., 1., 1., 0., 0.],
               [0., 0., 0., 0., 0., 0.]])
    """
    canvas, pad, origin = _scene_canvas(images, config)
    return _shift_bilinear(canvas, pad, origin, config.sensor_size).astype(np.float64)


def saccade_offsets(config: SaccadeConfig | None = None) -> np.ndarray:
    """Scene displacement ``(dx, dy)`` in pixels at each sample ``k = 0 .. 3 * steps_per_saccade``.

    Piecewise linear (constant speed) through the triangle ``A -> B -> C -> A`` of the module
    docstring; shape ``[3 * steps_per_saccade + 1, 2]``.

    Example:
        >>> config = SaccadeConfig(saccade_amplitude=2.0, saccade_us=4000)  # 4 steps per saccade
        >>> offsets = saccade_offsets(config)
        >>> offsets.shape
        (13, 2)
        >>> offsets[[0, 4, 8, 12]].tolist()  # the corners A, B, C and back to A
        [[-1.0, 1.0], [0.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]
    """
    config = config or SaccadeConfig()
    half = config.saccade_amplitude / 2.0
    vertices = np.array([[-half, half], [0.0, -half], [half, half], [-half, half]])
    n = config.steps_per_saccade
    frac = np.arange(n) / n
    segments = [vertices[s] + frac[:, None] * (vertices[s + 1] - vertices[s]) for s in range(3)]
    return np.concatenate(segments + [vertices[3:]])


def check_intensity_range(image: np.ndarray, name: str) -> None:
    """Finite values in [0, 1], or a ``ValueError`` with the range found.

    Example:
        >>> import numpy as np
        >>> check_intensity_range(np.array([0.0, 0.5, 1.0]), "image")  # fine: returns None
        >>> check_intensity_range(np.array([0.0, 1.5]), "image")
        Traceback (most recent call last):
            ...
        ValueError: expected image intensities in [0, 1], got range [0.0, 1.5]
    """
    if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise ValueError(
            f"expected {name} intensities in [0, 1], got range [{image.min()}, {image.max()}]"
        )


def _scene_canvas(images: np.ndarray, config: SaccadeConfig):
    """Upsampled images on a zero canvas large enough for every saccade position.

    Returns ``(canvas [N, Hc, Wc], pad (py, px), origin (ox, oy))``: the image's top-left pixel is
    at canvas index ``pad`` and, at rest, at sensor position ``origin`` (centred).
    """
    up = _upsample_bilinear(images, config.upsample)
    h, w = up.shape[1:]
    width, height = config.sensor_size
    origin = np.array([(width - w) / 2.0, (height - h) / 2.0])  # (x, y) of the image's pixel 0
    positions = origin + saccade_offsets(config)
    pads = []
    for axis, (size, n) in enumerate(((width, w), (height, h))):
        lo_shift, hi_shift = np.floor(positions[:, axis].min()), np.floor(positions[:, axis].max())
        pad_lo = int(max(0, hi_shift + 1))
        pad_hi = int(max(0, size - lo_shift - n))
        pads.append((pad_lo, pad_hi))
    (px_lo, px_hi), (py_lo, py_hi) = pads
    canvas = np.pad(up, ((0, 0), (py_lo, py_hi), (px_lo, px_hi))).astype(np.float32)
    return canvas, (py_lo, px_lo), origin


def _shift_bilinear(
    canvas: np.ndarray, pad: tuple[int, int], position: np.ndarray, sensor_size: tuple[int, int]
) -> np.ndarray:
    """Sensor view ``[N, H, W]`` of the image placed with its pixel 0 at ``position = (x, y)``.

    Sensor pixel ``y`` sees image coordinate ``y - pos_y``; with ``pos_y = iy + fy``
    (``iy = floor``), that is ``(1 - fy) * img[y - iy] + fy * img[y - iy - 1]`` (same along x).
    """
    width, height = sensor_size
    ix, iy = (int(v) for v in np.floor(position))
    fx, fy = (canvas.dtype.type(f) for f in (position[0] - ix, position[1] - iy))
    one = canvas.dtype.type(1.0)
    r0 = pad[0] - iy
    rows = (one - fy) * canvas[:, r0 : r0 + height] + fy * canvas[:, r0 - 1 : r0 - 1 + height]
    c0 = pad[1] - ix
    return (one - fx) * rows[:, :, c0 : c0 + width] + fx * rows[:, :, c0 - 1 : c0 - 1 + width]


def _upsample_bilinear(images: np.ndarray, factor: int) -> np.ndarray:
    """``[N, h, w] -> [N, h*f, w*f]``, bilinear with pixel centres aligned, dark (0) outside.

    Output pixel ``i`` samples source coordinate ``s = (i + 0.5) / f - 0.5`` and mixes source
    pixels ``floor(s)`` and ``floor(s) + 1`` with weights ``1 - frac(s)``, ``frac(s)``.
    """
    out = images
    for axis in (1, 2):
        n = out.shape[axis]
        s = (np.arange(n * factor) + 0.5) / factor - 0.5
        j = np.floor(s).astype(np.int64)
        frac = s - j
        padded = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in range(3)])
        shape = [1, 1, 1]
        shape[axis] = -1
        lo = np.take(padded, j + 1, axis=axis)
        hi = np.take(padded, j + 2, axis=axis)
        out = (1.0 - frac).reshape(shape) * lo + frac.reshape(shape) * hi
    return out

