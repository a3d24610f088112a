"""Road centre lines built from straights, clothoids and arcs, and Frenet coordinates on them.

The centre line is integrated from a curvature profile k(s) sampled every `ds` metres, so
curvature is continuous (clothoid transitions) and bounded by construction. Frenet coordinates
(s along the line, d to the left of it) are what the renderer and the controller work in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoadShape:
    """Ranges the random centre line is drawn from."""

    length_m: float = 600.0
    max_curvature: float = 1 / 120  # 1/m; 1/120 is a tight motorway bend
    straight_m: tuple[float, float] = (20.0, 150.0)
    clothoid_m: tuple[float, float] = (20.0, 60.0)
    arc_m: tuple[float, float] = (20.0, 150.0)
    curve_probability: float = 0.6


@dataclass
class Road:
    """A centre line sampled every `ds` metres: positions, heading and curvature against s."""

    ds: float
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray

    def __post_init__(self) -> None:
        # float32 copies for the per-pixel Frenet projection (millimetre precision is plenty).
        self._x32 = self.x.astype(np.float32)
        self._y32 = self.y.astype(np.float32)
        self._k32 = self.curvature.astype(np.float32)
        self._cos = np.cos(self.heading).astype(np.float32)
        self._sin = np.sin(self.heading).astype(np.float32)

    @property
    def length(self) -> float:
        return self.ds * (len(self.x) - 1)

    @classmethod
    def from_curvature(cls, curvature: np.ndarray, ds: float) -> Road:
        k = np.asarray(curvature, dtype=np.float64)
        heading = np.concatenate([[0.0], np.cumsum((k[1:] + k[:-1]) * 0.5 * ds)])
        mid = (heading[1:] + heading[:-1]) * 0.5
        x = np.concatenate([[0.0], np.cumsum(np.cos(mid) * ds)])
        y = np.concatenate([[0.0], np.cumsum(np.sin(mid) * ds)])
        return cls(ds, x, y, heading, k)

    @classmethod
    def random(cls, rng: np.random.Generator, shape: RoadShape, ds: float = 0.5) -> Road:
        n = int(shape.length_m / ds) + 1
        k = np.zeros(n)
        i = int(rng.uniform(*shape.straight_m) / ds)  # always start on a straight
        current = 0.0
        while i < n:
            if rng.random() < shape.curve_probability:
                target = rng.uniform(0.25, 1.0) * shape.max_curvature * rng.choice([-1.0, 1.0])
            else:
                target = 0.0
            ramp = max(2, int(rng.uniform(*shape.clothoid_m) / ds))
            hold_range = shape.arc_m if target else shape.straight_m
            hold = int(rng.uniform(*hold_range) / ds)
            seg = np.concatenate([np.linspace(current, target, ramp), np.full(hold, target)])
            k[i : i + len(seg)] = seg[: n - i]
            i += len(seg)
            current = target
        return cls.from_curvature(k, ds)

    def _sample(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        f = np.clip(np.asarray(s, dtype=np.float64) / self.ds, 0.0, len(self.x) - 1.000001)
        i = f.astype(np.int64)
        t = f - i
        x = self.x[i] + (self.x[i + 1] - self.x[i]) * t
        y = self.y[i] + (self.y[i + 1] - self.y[i]) * t
        h = self.heading[i] + (self.heading[i + 1] - self.heading[i]) * t
        k = self.curvature[i] + (self.curvature[i + 1] - self.curvature[i]) * t
        return x, y, h, k

    def pose(self, s: np.ndarray | float, d: np.ndarray | float = 0.0) -> tuple[np.ndarray, ...]:
        """World (x, y, heading) of the point at arc length s, offset d to the left."""
        x, y, h, _ = self._sample(np.asarray(s, dtype=np.float64))
        return x - np.sin(h) * d, y + np.cos(h) * d, h

    def curvature_at(self, s: np.ndarray | float) -> np.ndarray:
        return self._sample(np.asarray(s, dtype=np.float64))[3]

    def frenet(
        self, px: np.ndarray, py: np.ndarray, s_guess: np.ndarray, iterations: int = 3
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points -> (s, d, valid): Newton steps on the foot point, starting at `s_guess`.

        Each step projects onto the tangent at the nearest sample, so it converges to the
        nearest sample and its tangent offset (error below k*ds^2/8, a fraction of a millimetre).
        Points that do not converge (beyond the centre of curvature, off the ends of the road)
        are flagged invalid; the renderer treats them as terrain.
        """
        n = len(self.x)
        s = np.asarray(s_guess, dtype=np.float32)
        px, py = np.asarray(px, np.float32), np.asarray(py, np.float32)
        inv_ds = np.float32(1.0 / self.ds)
        for step in range(iterations + 1):
            i = np.clip(np.rint(s * inv_ds), 0, n - 1).astype(np.int32)
            ch, sh = self._cos[i], self._sin[i]
            dx, dy = px - self._x32[i], py - self._y32[i]
            along = dx * ch + dy * sh
            d = dy * ch - dx * sh
            stretch = 1.0 - self._k32[i] * d
            s = i * np.float32(self.ds) + along / np.maximum(stretch, np.float32(0.2))
            if step == iterations:
                break
        valid = (np.abs(along) <= 0.75 * self.ds) & (stretch > 0.2) & (s > 0.0) & (s < self.length)
        return s.astype(np.float64), d.astype(np.float64), valid

    def locate(
        self, x: float, y: float, s_hint: float | None = None, window_m: float = 60.0
    ) -> tuple[float, float]:
        """(s, d) of one world point: the nearest sample (searched around `s_hint`, or along the
        whole road), refined by `frenet`. Unlike `frenet` from a far guess, this converges on
        any road, however much it winds."""
        lo, hi = 0, len(self.x)
        if s_hint is not None:
            lo = max(0, int((s_hint - window_m) / self.ds))
            hi = min(len(self.x), int((s_hint + window_m) / self.ds) + 1)
        i = lo + int(np.argmin((self.x[lo:hi] - x) ** 2 + (self.y[lo:hi] - y) ** 2))
        s, d, _ = self.frenet(np.array([x]), np.array([y]), np.array([i * self.ds]))
        return float(s[0]), float(d[0])

    def heading_near(self, s: np.ndarray) -> np.ndarray:
        """Heading at the sample nearest to s (cheap; for per-pixel footprints)."""
        i = np.clip(np.rint(np.asarray(s) / self.ds), 0, len(self.x) - 1).astype(np.int32)
        return self.heading[i]
