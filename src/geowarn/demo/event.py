"""The demo's seeded typhoon: a rain field that crosses the county and one slope that accelerates.

Pure functions of time and place (no database), so the same seed always plays the same event:

* Rain: a rain band centred on a track from the south-east to the north-west of the county seat,
  Gaussian across the track (``radius_km``), with a sin² envelope in time that peaks at
  ``peak_at`` of the event; intensities are typical of a landfalling typhoon's outer bands
  (5–15 mm/h, 24-hour totals of 80–170 mm near the track).
* Failure: the displacement of one slope follows a constant-velocity stage (``v_eq`` mm/h) and,
  from ``accel_at``, tertiary creep with v(t) = 1 / (A·(t_f − t)) (Fukuzono 1985; Voight 1988),
  continuous in velocity at the onset. Its tangent angle arctan(v / v_eq) (Xu Qiang's improved
  tangent-angle method) therefore crosses 80° and 85° at known times, and an inverse-velocity fit
  recovers t_f, which lies one hour after the end of the replay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HOUR_MS = 3_600_000
KM_PER_DEG_LAT = 110.9
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TyphoonEvent:
    """One seeded event starting at ``start_ms`` and lasting ``hours``."""

    start_ms: int
    hours: float = 36.0
    seed: int = 2021
    lon0: float = 118.9
    lat0: float = 26.6
    peak_mm_h: float = 10.0
    radius_km: float = 22.0
    peak_at: float = 0.6
    v_eq_mm_h: float = 0.25
    accel_at: float = 0.3
    failure_after_end_h: float = 1.0

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.hours * HOUR_MS)

    # --- rain -------------------------------------------------------------------------------

    def _track(self, frac: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Centre of the rain band (lon, lat) at fractions of the event; seeded offset of the track."""
        rng = np.random.default_rng(self.seed + 101)
        off_lon, off_lat = rng.uniform(-0.05, 0.05, 2)
        lon = self.lon0 + 0.35 - 0.7 * frac + off_lon
        lat = self.lat0 - 0.30 + 0.6 * frac + off_lat
        return lon, lat

    def rate_mm_h(self, lon: npt.ArrayLike, lat: npt.ArrayLike, t_ms: npt.ArrayLike) -> FloatArray:
        """Rain intensity (mm/h) at points and times (broadcast together)."""
        lon_a, lat_a, t = np.broadcast_arrays(
            np.asarray(lon, float), np.asarray(lat, float), np.asarray(t_ms, np.float64)
        )
        frac = (t - self.start_ms) / (self.hours * HOUR_MS)
        inside = (frac >= 0) & (frac <= 1)
        f = np.clip(frac, 0.0, 1.0)
        # sin² envelope peaking at ``peak_at``: warp time so the peak falls there.
        warped = np.where(
            f <= self.peak_at, 0.5 * f / self.peak_at, 0.5 + 0.5 * (f - self.peak_at) / (1 - self.peak_at)
        )
        envelope = np.sin(np.pi * warped) ** 2
        c_lon, c_lat = self._track(f)
        dx = (lon_a - c_lon) * KM_PER_DEG_LAT * math.cos(math.radians(self.lat0))
        dy = (lat_a - c_lat) * KM_PER_DEG_LAT
        across = np.exp(-(dx * dx + dy * dy) / (2 * self.radius_km**2))
        return np.where(inside, self.peak_mm_h * envelope * (0.25 + 0.75 * across), 0.0)

    def rain_mm(self, lon: npt.ArrayLike, lat: npt.ArrayLike, t0_ms: int, t1_ms: int, step_min: int = 5) -> FloatArray:
        """Rain (mm) at points between two times: the intensity integrated by the midpoint rule."""
        if t1_ms <= t0_ms:
            return np.zeros(np.shape(lon))
        n = max(1, math.ceil((t1_ms - t0_ms) / (step_min * 60_000)))
        edges = np.linspace(t0_ms, t1_ms, n + 1)
        mids = (edges[:-1] + edges[1:]) / 2
        dt_h = (t1_ms - t0_ms) / n / HOUR_MS
        lon_a, lat_a = np.asarray(lon, float), np.asarray(lat, float)
        rates = self.rate_mm_h(lon_a[..., None], lat_a[..., None], mids)
        return np.asarray(rates.sum(axis=-1) * dt_h, dtype=np.float64)

    def forecast_skill(self, t_ms: int) -> float:
        """The share of the coming rain a forecast issued at ``t_ms`` expects: typhoon rain forecasts
        firm up as the storm approaches (30 % at the start of the event, all of it after 14 hours)."""
        hours = max(0.0, (t_ms - self.start_ms) / HOUR_MS)
        return min(1.0, 0.3 + 0.05 * hours)

    def grid_mm(
        self, west: float, south: float, cell_deg: float, shape: tuple[int, int], t0_ms: int, t1_ms: int
    ) -> FloatArray:
        """Rain (mm) of a regular lon/lat grid (row 0 at the north) between two times, hourly steps."""
        rows, cols = shape
        lons = west + (np.arange(cols) + 0.5) * cell_deg
        lats = south + (rows - np.arange(rows) - 0.5) * cell_deg
        lon2, lat2 = np.meshgrid(lons, lats)
        return self.rain_mm(lon2, lat2, t0_ms, t1_ms, step_min=60)

    # --- the accelerating slope --------------------------------------------------------------

    @property
    def accel_ms(self) -> int:
        return self.start_ms + int(self.accel_at * self.hours * HOUR_MS)

    @property
    def failure_ms(self) -> int:
        return self.end_ms + int(self.failure_after_end_h * HOUR_MS)

    def velocity_mm_h(self, t_ms: npt.ArrayLike) -> FloatArray:
        """Displacement rate: v_eq before the onset, 1/(A·(t_f − t)) after it."""
        t = np.asarray(t_ms, np.float64)
        tf_h = (self.failure_ms - self.accel_ms) / HOUR_MS
        left_h = np.maximum((self.failure_ms - t) / HOUR_MS, 1e-3)
        return np.where(t < self.accel_ms, self.v_eq_mm_h, self.v_eq_mm_h * tf_h / left_h)

    def displacement_mm(self, t_ms: npt.ArrayLike) -> FloatArray:
        """Cumulative displacement since the start of the event (mm); negative before it."""
        t = np.asarray(t_ms, np.float64)
        lin = self.v_eq_mm_h * (np.minimum(t, self.accel_ms) - self.start_ms) / HOUR_MS
        tf_h = (self.failure_ms - self.accel_ms) / HOUR_MS
        left_h = np.maximum((self.failure_ms - np.maximum(t, self.accel_ms)) / HOUR_MS, 1e-3)
        tertiary = self.v_eq_mm_h * tf_h * np.log(tf_h / left_h)
        return np.asarray(lin + np.where(t > self.accel_ms, tertiary, 0.0), dtype=np.float64)

    def angle_crossing_ms(self, degrees: float) -> int:
        """When the tangent angle arctan(v / v_eq) reaches ``degrees`` (after the onset)."""
        ratio = math.tan(math.radians(degrees))
        if ratio <= 1:
            return self.accel_ms
        return int(self.failure_ms - (self.failure_ms - self.accel_ms) / ratio)
