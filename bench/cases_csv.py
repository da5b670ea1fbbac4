"""A synthetic NYC 311 export for load benchmarks, in the columns etl/presets/nyc/nyc311.yaml
reads. Deterministic for a seed; written in chunks so memory stays small.

Points are drawn inside the loaded grids (census tracts), a tract's share of the cases varying
like its population does; ~3 % of rows have no coordinates and are placed by their community
board ("12 BRONX"), as real 311 rows are. Timestamps span 2023 in New York local time (so the
hour repeated at the end of daylight saving time occurs, as in real exports).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely

COLUMNS = ["Unique Key", "Created Date", "Closed Date", "Agency", "Agency Name",
           "Complaint Type", "Descriptor", "Location Type", "Incident Zip", "Incident Address",
           "Status", "Due Date", "Resolution Description", "Community Board", "Borough",
           "Open Data Channel Type", "Latitude", "Longitude"]
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
NO_COORDINATES = 0.03
OPEN_SHARE = 0.12
CHUNK = 100_000

AGENCIES = {
    "NYPD": "New York City Police Department",
    "HPD": "Department of Housing Preservation and Development",
    "DSNY": "Department of Sanitation",
    "DOT": "Department of Transportation",
    "DEP": "Department of Environmental Protection",
    "DOB": "Department of Buildings",
    "DPR": "Department of Parks and Recreation",
    "DOHMH": "Department of Health and Mental Hygiene",
}
# (agency, complaint type, descriptor, location type, weight)
COMPLAINTS = [
    ("NYPD", "Noise - Residential", "Loud Music/Party", "Residential Building/House", 12),
    ("NYPD", "Noise - Residential", "Banging/Pounding", "Residential Building/House", 6),
    ("NYPD", "Illegal Parking", "Blocked Hydrant", "Street/Sidewalk", 7),
    ("NYPD", "Blocked Driveway", "No Access", "Street/Sidewalk", 6),
    ("NYPD", "Noise - Street/Sidewalk", "Loud Talking", "Street/Sidewalk", 4),
    ("NYPD", "Noise - Vehicle", "Car/Truck Music", "Street/Sidewalk", 2),
    ("HPD", "HEAT/HOT WATER", "ENTIRE BUILDING", "RESIDENTIAL BUILDING", 9),
    ("HPD", "UNSANITARY CONDITION", "PESTS", "RESIDENTIAL BUILDING", 3),
    ("HPD", "PLUMBING", "WATER SUPPLY", "RESIDENTIAL BUILDING", 2),
    ("HPD", "PAINT/PLASTER", "WALL", "RESIDENTIAL BUILDING", 2),
    ("DSNY", "Dirty Condition", "Trash", "Sidewalk", 3),
    ("DSNY", "Missed Collection", "Recycling - Paper", "Street", 2),
    ("DSNY", "Derelict Vehicles", "Derelict Vehicles", "Street", 2),
    ("DOT", "Street Condition", "Pothole", "Street", 4),
    ("DOT", "Street Light Condition", "Street Light Out", "Street", 3),
    ("DOT", "Traffic Signal Condition", "Controller", "Street", 1),
    ("DEP", "Water System", "Leak (Use Comments) (WA2)", "Street", 2),
    ("DEP", "Noise", "Noise: Construction Before/After Hours (NM1)", "Street", 2),
    ("DEP", "Sewer", "Catch Basin Clogged/Flooding (Use Comments) (SC)", "Street", 1),
    ("DOB", "General Construction/Plumbing", "Building Without Permit", "Building", 1),
    ("DPR", "Damaged Tree", "Branch Cracked and Will Fall", "Street", 2),
    ("DPR", "New Tree Request", "For One Address", "Street", 1),
    ("DOHMH", "Rodent", "Rat Sighting", "3+ Family Apt. Building", 2),
    ("DOHMH", "Food Establishment", "Food Contaminated", "Restaurant/Bar/Deli/Bakery", 1),
]
RESOLUTIONS = {
    "NYPD": "The Police Department responded to the complaint and with the information "
            "available observed no evidence of the violation at that time.",
    "HPD": "The Department of Housing Preservation and Development inspected the following "
           "conditions. Violations were issued.",
    "DSNY": "The Department of Sanitation investigated this complaint and found no violation "
            "at the location.",
    "DOT": "The Department of Transportation inspected this condition and repaired the problem.",
    "DEP": "The Department of Environmental Protection determined that this complaint is a "
           "duplicate of a previously filed complaint.",
    "DOB": "The Department of Buildings reviewed this complaint and closed it.",
    "DPR": "The Department of Parks and Recreation has completed the requested work order.",
    "DOHMH": "The Department of Health and Mental Hygiene will review your complaint.",
}
CHANNELS = (["PHONE", "ONLINE", "MOBILE", "UNKNOWN", "OTHER"], [0.45, 0.3, 0.2, 0.04, 0.01])
OPEN_STATUSES = ["Open", "Assigned", "Pending", "Started"]
STREETS = ["BROADWAY", "5 AVENUE", "GRAND CONCOURSE", "FLATBUSH AVENUE", "QUEENS BOULEVARD",
           "AMSTERDAM AVENUE", "OCEAN PARKWAY", "JAMAICA AVENUE", "VICTORY BOULEVARD",
           "EAST 149 STREET", "WEST 42 STREET", "NOSTRAND AVENUE", "ROOSEVELT AVENUE",
           "HYLAN BOULEVARD", "ATLANTIC AVENUE", "LEXINGTON AVENUE", "FORDHAM ROAD",
           "CONEY ISLAND AVENUE", "NORTHERN BOULEVARD", "RICHMOND AVENUE"]
ZIPS = {"MANHATTAN": (10001, 10282), "BRONX": (10451, 10475), "BROOKLYN": (11201, 11256),
        "QUEENS": (11101, 11697), "STATEN ISLAND": (10301, 10314)}


def grids(url: str) -> pd.DataFrame:
    """The loaded grids: code, community board ("12 BRONX"), borough and geometry."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, street_code, upper(properties->>'borough'), ST_AsBinary(geom) "
            "FROM admin_unit WHERE level = 4 ORDER BY code").fetchall()
    frame = pd.DataFrame(rows, columns=["code", "street_code", "borough", "wkb"])
    board = frame["street_code"].str.extract(r"^(.+) (\d{2})$")
    frame["board"] = board[1] + " " + board[0]
    frame["geom"] = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy())
    return frame


def sample_points(geoms: np.ndarray, counts: np.ndarray, rng: np.random.Generator):
    """``counts[i]`` uniform random points inside each polygon ``geoms[i]`` (vectorised
    rejection sampling in each bounding box)."""
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    fill = shapely.area(geoms) / np.maximum(
        (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1]), 1e-12)
    xs, ys = [], []
    for geom, (x0, y0, x1, y1), share, want in zip(geoms, bounds, fill, counts, strict=True):
        got_x, got_y, have = [], [], 0
        while have < want:
            n = int((want - have) / max(share, 0.01) * 1.2) + 16
            x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
            inside = shapely.contains_xy(geom, x, y)
            got_x.append(x[inside])
            got_y.append(y[inside])
            have += int(inside.sum())
        xs.append(np.concatenate(got_x)[:want] if want else np.empty(0))
        ys.append(np.concatenate(got_y)[:want] if want else np.empty(0))
    return np.concatenate(xs), np.concatenate(ys)


def write_cases(url: str, path: Path, rows: int, seed: int = 20240611) -> dict:
    """Write ``rows`` synthetic 311 cases to ``path``; return a summary of what was written."""
    rng = np.random.default_rng(seed)
    grid = grids(url)
    weights = rng.gamma(2.0, 1.0, len(grid))
    counts = rng.multinomial(rows, weights / weights.sum())
    lon, lat = sample_points(grid["geom"].to_numpy(), counts, rng)
    tract = np.repeat(np.arange(len(grid)), counts)
    order = rng.permutation(rows)
    lon, lat, tract = lon[order], lat[order], tract[order]
    complaint_weights = np.array([c[4] for c in COMPLAINTS], dtype=float)
    complaint_p = complaint_weights / complaint_weights.sum()
    no_xy = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        for start in range(0, rows, CHUNK):
            stop = min(start + CHUNK, rows)
            frame = _chunk(rng, start, stop, lon[start:stop], lat[start:stop],
                           grid.iloc[tract[start:stop]], complaint_p)
            no_xy += int(frame["Longitude"].isna().sum())
            frame.to_csv(handle, header=start == 0, index=False, na_rep="",
                         float_format="%.9f")
    return {"rows": rows, "grids": len(grid), "without_coordinates": no_xy,
            "bytes": path.stat().st_size, "seed": seed}


def _chunk(rng, start, stop, lon, lat, grid: pd.DataFrame, complaint_p) -> pd.DataFrame:
    n = stop - start
    pick = rng.choice(len(COMPLAINTS), n, p=complaint_p)
    agency = np.array([c[0] for c in COMPLAINTS], dtype=object)[pick]
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 86400, n), unit="s")
    handling = pd.to_timedelta(np.minimum(rng.lognormal(np.log(20 * 3600), 1.4, n), 2e7),
                               unit="s")
    closed = created + handling
    due = created + pd.to_timedelta(rng.choice([1, 3, 5, 8, 14, 30], n), unit="D")
    is_open = rng.random(n) < OPEN_SHARE
    located = rng.random(n) >= NO_COORDINATES
    borough = grid["borough"].to_numpy()
    low = np.array([ZIPS.get(b, (10001, 11697))[0] for b in borough])
    high = np.array([ZIPS.get(b, (10001, 11697))[1] for b in borough])
    street = np.array(STREETS, dtype=object)[rng.integers(0, len(STREETS), n)]
    number = rng.integers(1, 3000, n).astype(str).astype(object)
    return pd.DataFrame({
        "Unique Key": np.arange(50_000_000 + start, 50_000_000 + stop),
        "Created Date": created.strftime(TIME_FORMAT),
        "Closed Date": pd.Series(closed.strftime(TIME_FORMAT)).where(~is_open, None),
        "Agency": agency,
        "Agency Name": [AGENCIES[a] for a in agency],
        "Complaint Type": np.array([c[1] for c in COMPLAINTS], dtype=object)[pick],
        "Descriptor": np.array([c[2] for c in COMPLAINTS], dtype=object)[pick],
        "Location Type": np.array([c[3] for c in COMPLAINTS], dtype=object)[pick],
        "Incident Zip": rng.integers(low, high + 1),
        "Incident Address": number + " " + street,
        "Status": np.where(is_open, np.array(OPEN_STATUSES, dtype=object)[
            rng.integers(0, len(OPEN_STATUSES), n)], "Closed"),
        "Due Date": due.strftime(TIME_FORMAT),
        "Resolution Description": pd.Series([RESOLUTIONS[a] for a in agency]).where(
            ~is_open, None),
        "Community Board": grid["board"].to_numpy(),
        "Borough": borough,
        "Open Data Channel Type": rng.choice(CHANNELS[0], n, p=CHANNELS[1]),
        "Latitude": np.where(located, lat, np.nan),
        "Longitude": np.where(located, lon, np.nan),
    }, columns=COLUMNS)
