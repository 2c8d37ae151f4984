"""What the quality-diversity core (``qd/``) needs to know about a sparse-reward task, and shared helpers.

The tasks of TAXONS / SERENE / STAX (Paolo et al.; authors' code github.com/GPaolo/SERENE and
github.com/GPaolo/STAX) are ``envs.redundant_arm``, ``envs.hard_maze``, ``envs.curling`` and ``envs.ant_maze``.
Each env class derives from :class:`QDTaskEnv` and carries a :class:`QDTaskSpec` as ``spec_qd`` (its fields
become class attributes); besides it,
``qd/`` relies on: deterministic episodes after ``reset(seed=...)``, ``info["outcome"]`` (the ground-truth
(x, y), shape (2,)) at every step, ``info["reward_area"]`` (area id or -1) at the last step, a sparse reward,
``render()`` returning an ``rgb_array`` and ``env.unwrapped.state_observation()`` (a small vector of the final
state, the autoencoders' fast input). The helpers here are the parts all tasks share: the point-in-disc reward of the
authors (``(radius - distance) / radius`` inside a reward area, at the end of the episode) and a small numpy
rasteriser for the top-down ``rgb_array`` renders (no pygame / OpenGL needed, so renders work headless and
in worker processes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

__all__ = ["QDTaskEnv", "QDTaskSpec", "area_reward", "blank_canvas", "paint_discs", "paint_polygons", "paint_segments"]


@dataclass(frozen=True)
class QDTaskSpec:
    """Static description of a QD task, read by ``qd/`` (coverage grid, genome size, evaluation length).

    :param outcome_bounds: ((low, high), (low, high)) bounds of the ground-truth outcome (final position),
        used for the 50 x 50 coverage grid and the hand-designed descriptor of NS / MAP-Elites.
    :param reward_areas: names of the reward areas; the index is the area id in ``info["reward_area"]``.
    :param controller: ``"mlp"`` (closed loop, obs -> action) or ``"open_loop"`` (genome = actions).
    :param controller_hidden: hidden layer sizes of the MLP controller (authors' ``environments.py``).
    :param max_steps: evaluation length in env steps (authors' ``environments.py`` ``max_steps``).
    :param description: one line saying what the task is.
    """

    outcome_bounds: tuple[tuple[float, float], ...]
    reward_areas: tuple[str, ...]
    controller: str
    controller_hidden: tuple[int, ...]
    max_steps: int
    description: str = ""

    def __post_init__(self) -> None:
        if self.controller not in ("mlp", "open_loop"):
            raise ValueError(f"controller must be 'mlp' or 'open_loop', got {self.controller!r}")
        if len(self.outcome_bounds) != 2 or any(low >= high for low, high in self.outcome_bounds):
            raise ValueError(f"outcome_bounds must be two (low, high) pairs with low < high, got {self.outcome_bounds}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")



class QDTaskEnv(gym.Env):
    """Base class of the QD tasks: ``spec_qd``'s fields as class attributes, and the render-mode check.

    A subclass sets ``spec_qd``; its fields (``outcome_bounds``, ``reward_areas``, ``controller``, ...) become
    class attributes too, so ``env.unwrapped.max_steps`` and ``EnvClass.outcome_bounds`` both work.

    :param render_mode: ``"rgb_array"`` or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    spec_qd: ClassVar[QDTaskSpec]

    def __init_subclass__(cls, **kwargs) -> None:  # noqa: ANN003 - passed through to type
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec_qd")
        if spec is not None:
            for spec_field in dataclasses.fields(spec):
                setattr(cls, spec_field.name, getattr(spec, spec_field.name))

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode

def area_reward(position: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> tuple[float, int]:
    """Reward and area id of a final position: ``(r - d) / r`` in the first area containing it, else (0, -1).

    This is the authors' end-of-episode reward of every task (``calculate_reward`` in
    ``gym_redarm/envs/arm_env.py``, ``reward_function`` in ``gym_billiard/envs/curling.py``,
    ``reward_distance_multigoal`` in ``gym_fastsim/simple_nav/nav_env.py``, ``step`` in
    ``ant_maze/ant_maze.py``): 1 at an area's centre, 0 at
    its rim. The first area in order wins where areas overlap (as the authors' loop does).

    :param position: (2,) position.
    :param centers: (n, 2) area centres.
    :param radii: (n,) area radii.
    :return: (reward, area id or -1).
    """
    distances = np.linalg.norm(np.asarray(centers, dtype=np.float64) - np.asarray(position, dtype=np.float64), axis=1)
    inside = np.flatnonzero(distances <= radii)
    if inside.size == 0:
        return 0.0, -1
    area = int(inside[0])
    return float((radii[area] - distances[area]) / radii[area]), area


# --------------------------------------------------------------------------------------------------
# Rasteriser for the top-down renders. Coordinates are pixel coordinates (x = column, y = row), floats.
# --------------------------------------------------------------------------------------------------


def blank_canvas(height: int, width: int, color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A (height, width, 3) uint8 image filled with ``color``."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[...] = np.asarray(color, dtype=np.uint8)
    return image


def _pixel_centres(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return cols + 0.5, rows + 0.5


def paint_discs(image: np.ndarray, centers: np.ndarray, radii: np.ndarray, color: tuple[int, int, int]) -> None:
    """Fill discs (pixel units) in place."""
    x, y = _pixel_centres(image)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for (cx, cy), radius in zip(
        np.reshape(centers, (-1, 2)), np.broadcast_to(radii, (len(np.reshape(centers, (-1, 2))),))
    ):
        mask |= (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    image[mask] = color


def paint_segments(image: np.ndarray, segments: np.ndarray, width: float, color: tuple[int, int, int]) -> None:
    """Draw thick segments ``(n, 4)`` rows ``x0, y0, x1, y1`` (pixel units) in place."""
    x, y = _pixel_centres(image)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in np.reshape(segments, (-1, 4)):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        mask |= (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 <= (width / 2.0) ** 2
    image[mask] = color


def paint_polygons(image: np.ndarray, polygons: list[np.ndarray], color: tuple[int, int, int]) -> None:
    """Fill polygons (each an (m, 2) vertex loop in pixel units) in place, even-odd rule."""
    x, y = _pixel_centres(image)
    for polygon in polygons:
        inside = np.zeros(image.shape[:2], dtype=bool)
        vertices = np.asarray(polygon, dtype=np.float64)
        for (xa, ya), (xb, yb) in zip(vertices, np.roll(vertices, -1, axis=0)):
            if ya == yb:
                continue
            crosses = (ya > y) != (yb > y)
            x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (x < x_cross)
        image[inside] = color
