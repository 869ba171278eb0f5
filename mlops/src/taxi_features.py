"""Fare-relevant features computed from the 20 raw trip columns (trip time, straight-line miles, places)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

EARTH_RADIUS_MILES = 3958.8


class Place(NamedTuple):
    """A point of interest and the radius (miles) within which a trip counts as starting/ending there."""

    latitude: float
    longitude: float
    radius_miles: float


AIRPORTS: dict[str, Place] = {
    "jfk": Place(40.6413, -73.7781, 1.5),
    "lga": Place(40.7769, -73.8740, 1.0),
    "ewr": Place(40.6895, -74.1745, 1.5),
}

# Manhattan approximated as a band around the line from the Battery to Inwood: close enough to tell
# the JFK flat fare (JFK <-> Manhattan) from metered airport trips.
MANHATTAN_SOUTH = (40.7033, -74.0170)
MANHATTAN_NORTH = (40.8730, -73.9110)
MANHATTAN_HALF_WIDTH_MILES = 1.1

_DAYS_BEFORE_MONTH = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_SECONDS_PER_DAY = 86_400
_DAYS_PER_YEAR = 365


def haversine_miles(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in miles between two arrays of points given in degrees."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = np.radians(lon2 - lon1) / 2
    a = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def near(latitude: np.ndarray, longitude: np.ndarray, place: Place) -> np.ndarray:
    """1.0 where a point lies within the place's radius, else 0.0."""
    distance = haversine_miles(
        latitude, longitude, np.full_like(latitude, place.latitude), np.full_like(longitude, place.longitude)
    )
    return (distance <= place.radius_miles).astype("float64")


def in_manhattan(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """1.0 where a point lies in the Manhattan band, else 0.0 (an approximation, see MANHATTAN_*)."""
    # Work in miles on a local flat projection: fine at the scale of one island.
    miles_per_degree_lat = EARTH_RADIUS_MILES * np.pi / 180
    miles_per_degree_lon = miles_per_degree_lat * np.cos(np.radians(MANHATTAN_SOUTH[0]))
    axis = np.array(
        [
            (MANHATTAN_NORTH[0] - MANHATTAN_SOUTH[0]) * miles_per_degree_lat,
            (MANHATTAN_NORTH[1] - MANHATTAN_SOUTH[1]) * miles_per_degree_lon,
        ]
    )
    length = float(np.hypot(*axis))
    north, east = (
        (latitude - MANHATTAN_SOUTH[0]) * miles_per_degree_lat,
        (longitude - MANHATTAN_SOUTH[1]) * miles_per_degree_lon,
    )
    along = (north * axis[0] + east * axis[1]) / length
    across = np.abs(north * axis[1] - east * axis[0]) / length
    return ((along >= 0) & (along <= length) & (across <= MANHATTAN_HALF_WIDTH_MILES)).astype("float64")


def seconds_into_year(
    month: np.ndarray, monthday: np.ndarray, hour: np.ndarray, minute: np.ndarray, second: np.ndarray
) -> np.ndarray:
    """Seconds since Jan 1 00:00 of a non-leap year (the data carries no year)."""
    day_of_year = _DAYS_BEFORE_MONTH[month.astype(int) - 1] + monthday - 1
    return day_of_year * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second


Column = Callable[[str], np.ndarray]
"""A raw column by name as a float64 array: the one way the features read their input."""


def trip_minutes(trips: pd.DataFrame) -> np.ndarray:
    """Trip duration in minutes from the pickup and dropoff date parts; trips may cross New Year."""
    return _trip_minutes(_frame_column(trips))


def _trip_minutes(column: Column) -> np.ndarray:
    def at(prefix: str) -> np.ndarray:
        return seconds_into_year(
            *(column(f"{prefix}_{part}") for part in ("month", "monthday", "hour", "minute", "second"))
        )

    seconds = at("dropoff") - at("pickup")
    seconds = np.where(seconds < 0, seconds + _DAYS_PER_YEAR * _SECONDS_PER_DAY, seconds)
    return seconds / 60


def _frame_column(trips: pd.DataFrame) -> Column:
    return lambda name: trips[name].to_numpy(dtype="float64")


def feature_columns(column: Column) -> dict[str, np.ndarray]:
    """The model's inputs, in model order, computed from raw columns fetched by name."""
    pickup = column("pickup_latitude"), column("pickup_longitude")
    dropoff = column("dropoff_latitude"), column("dropoff_longitude")
    distance, hour, weekday = column("distance"), column("pickup_hour"), column("pickup_weekday")
    minutes = _trip_minutes(column)
    straight = haversine_miles(*pickup, *dropoff)
    pickup_manhattan, dropoff_manhattan = in_manhattan(*pickup), in_manhattan(*dropoff)
    pickup_jfk, dropoff_jfk = near(*pickup, AIRPORTS["jfk"]), near(*dropoff, AIRPORTS["jfk"])
    return {
        "distance": distance,
        "trip_minutes": minutes,
        "straight_miles": straight,
        # Meter time vs distance charges depend on speed: below 12 mph the meter counts minutes.
        "mean_mph": distance / np.maximum(minutes, 0.5) * 60,
        "road_factor": distance / np.maximum(straight, 0.05),
        "passengers": column("passengers"),
        "vendor": column("vendor"),
        "store_forward": column("store_forward"),
        "pickup_latitude": pickup[0],
        "pickup_longitude": pickup[1],
        "dropoff_latitude": dropoff[0],
        "dropoff_longitude": dropoff[1],
        "pickup_hour": hour,
        "pickup_weekday": weekday,
        "pickup_month": column("pickup_month"),
        "night": ((hour >= 20) | (hour < 6)).astype("float64"),
        "weekday_peak": ((weekday < 5) & (hour >= 16) & (hour < 20)).astype("float64"),
        "pickup_manhattan": pickup_manhattan,
        "dropoff_manhattan": dropoff_manhattan,
        "pickup_jfk": pickup_jfk,
        "dropoff_jfk": dropoff_jfk,
        "jfk_manhattan": np.maximum(pickup_jfk * dropoff_manhattan, dropoff_jfk * pickup_manhattan),
        "pickup_lga": near(*pickup, AIRPORTS["lga"]),
        "dropoff_lga": near(*dropoff, AIRPORTS["lga"]),
        "dropoff_ewr": near(*dropoff, AIRPORTS["ewr"]),
    }


def engineer_features(trips: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs for trips given as a DataFrame with the 20 named raw columns (any order)."""
    return pd.DataFrame(feature_columns(_frame_column(trips)), index=trips.index)


def engineer_matrix(rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """engineer_features for a float matrix whose columns are named by `columns`: the same numbers, as a
    matrix in model order, without pandas (a few rows cost ~30 us instead of ~1 ms).
    """
    # One contiguous array per raw column, as a DataFrame column is: numpy's vectorised sin/cos may
    # round differently on strided views, and the two forms must agree to the last bit.
    by_column = np.ascontiguousarray(rows.T, dtype="float64")
    position = {name: index for index, name in enumerate(columns)}
    return np.column_stack(list(feature_columns(lambda name: by_column[position[name]]).values()))


# The scoring scripts look for this on the pickled feature step (cloudpickle keeps function attributes)
# to skip pandas on their hot path; they check the two forms agree before they use it.
engineer_features.matrix_form = engineer_matrix  # type: ignore[attr-defined]
