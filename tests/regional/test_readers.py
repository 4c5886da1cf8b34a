"""Every grid reader on real files written to disk, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pyproj import CRS

from geowarn.errors import GridRejected
from geowarn.regional import readers
from geowarn.regional.grid import Grid
from geowarn.regional.readers import read_grid, register_reader, write_grid, write_netcdf

FORMATS = [("geotiff", ".tif"), ("netcdf", ".nc"), ("ascii", ".asc")]


def rain(shape: tuple[int, int] = (6, 8), seed: int = 5) -> np.ndarray:
    values = np.random.default_rng(seed).gamma(2, 20, shape).round(1)
    values[2, 3] = np.nan
    return values


@pytest.mark.parametrize(("fmt", "suffix"), FORMATS)
def test_each_format_round_trips_a_geographic_grid(tmp_path: Path, fmt: str, suffix: str) -> None:
    grid = Grid.regular(118.5, 27.0, 0.05, rain(), crs=4490)
    back = read_grid(write_grid(grid, tmp_path / f"rain{suffix}"))
    assert back.shape == (6, 8) and back.aligned(grid)
    assert back.crs.equals(CRS.from_epsg(4490), ignore_axis_order=True)
    np.testing.assert_allclose(back.values, grid.values.astype(np.float32), equal_nan=True)
    assert back.source.startswith(f"rain{suffix}")


@pytest.mark.parametrize(("fmt", "suffix"), FORMATS)
def test_each_format_round_trips_a_gauss_krueger_grid(tmp_path: Path, fmt: str, suffix: str) -> None:
    grid = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, rain((5, 4)), crs=4527)  # CGCS2000 GK zone 39
    back = read_grid(write_grid(grid, tmp_path / f"gk{suffix}"))
    assert back.aligned(Grid(back.values, grid.transform, back.crs))
    assert back.crs.equals(grid.crs, ignore_axis_order=True) or back.crs.to_epsg() == 4527
    np.testing.assert_allclose(back.values, grid.values.astype(np.float32), equal_nan=True)


def test_esri_ascii_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "county.asc"
    path.write_text(
        "NCOLS 3\nnrows 2\nXLLCENTER 118.05\nyllcenter 26.05\nCellSize 0.1\nnodata_value -1\n1.5 -1 3\n4 5e1 6\n"
    )
    g = read_grid(path)
    assert g.transform.almost_equals(Affine(0.1, 0, 118.0, 0, -0.1, 26.2))
    np.testing.assert_array_equal(g.values, [[1.5, np.nan, 3], [4, 50, 6]])
    assert g.crs.to_epsg() == 4326  # no .prj: a lon/lat extent is taken as WGS84
    # rows wrapped over several lines are still read in order; dx/dy cells
    path.write_text("ncols 3\nnrows 2\nxllcorner 0\nyllcorner 0\ndx 2\ndy 1\n1 2\n3 4\n5\n6\n")
    g = read_grid(path, crs="EPSG:3857")
    assert g.cell == (2.0, 1.0) and g.values.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_esri_ascii_projection_file(tmp_path: Path) -> None:
    grid = Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.ones((2, 2)), crs=4527)
    path = write_grid(grid, tmp_path / "gk.asc")
    assert "Gauss_Kruger" in path.with_suffix(".prj").read_text() or "GK" in path.with_suffix(".prj").read_text()
    path.with_suffix(".prj").write_text("PROJCS[garbage")
    with pytest.raises(GridRejected, match=r"gk\.prj"):
        read_grid(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(GridRejected, match="no coordinate reference system"):
        read_grid(path)  # projected numbers and no CRS
    assert read_grid(path, crs=4527).crs.to_epsg() == 4527


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("ncols 2\nnrows 2\nxllcorner 118\nyllcorner 26\ncellsize 0.1\n1 2\n3\n", "3 values for the 4 cells"),
        ("ncols 2\nnrows 2\nxllcorner 118\nyllcorner 26\ncellsize 0.1\n1 2\n3 x4\n", r"line 7: 'x4' is not a number"),
        ("ncols 2\nnrows 1\nxllcorner 118\nyllcorner 26\ncellsize 0.1\n1 2\n3\n", "more than the 2 values"),
        ("ncols 2\nnrows 1\nxllcorner 118\ncellsize 0.1\n1 2\n", "lacks yllcorner"),
        ("ncols 2\nnrows 1\nxllcorner 118\nyllcorner 26\ncellsize -1\n1 2\n", "cellsize must be positive"),
        ("ncols two\nnrows 1\n", "ncols = 'two' is not a number"),
        ("ncols 2\nnrows 1\ncolour red\n", "line 3: not an ESRI ASCII header"),
        ("1 2 3\n", "no ESRI ASCII header"),
        ("ncols 100000\nnrows 100000\nxllcorner 0\nyllcorner 0\ncellsize 1\n0\n", "exceed the limit"),
        ("ncols 1\nnrows 1\nxllcorner 118\nyllcorner 26\ncellsize 0.1\n" + "0 " * 5000 + "\n", "far more"),
    ],
)
def test_bad_esri_ascii_files_name_the_line_and_reason(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.asc"
    path.write_text(body)
    with pytest.raises(GridRejected, match=match) as err:
        read_grid(path)
    assert err.value.extra["file"] == "bad.asc" and "bad.asc" in err.value.message_zh


def test_netcdf_variables_steps_orientation_and_units(tmp_path: Path) -> None:
    days = [Grid.regular(118.0, 27.0, 0.1, np.full((3, 4), v), crs=4490) for v in (10.0, 20.0)]
    days[0].values[0, 0] = 99.0  # the north-west corner, to check the south-up file is flipped back
    temp = days[0].with_values(np.full((3, 4), 290.0))
    path = write_netcdf(tmp_path / "model.nc", {"precip": days, "t2m": temp}, units={"precip": "mm", "t2m": "K"})
    first = read_grid(path)  # the rain-like variable is found by its name
    assert first.values[0, 0] == 99.0 and first.values[2, 3] == 10.0 and first.transform.f == pytest.approx(27.0)
    assert "variable precip, step 1 (time=0)" in first.source
    assert read_grid(path, variable="precip", band=2).values.max() == 20.0
    with pytest.raises(GridRejected, match="no band 3") as err:
        read_grid(path, band=3)
    assert err.value.extra["part"] == "variable precip, step 3" and err.value.extra["file"] == "model.nc"
    with pytest.raises(GridRejected, match="no such variable") as err:
        read_grid(path, variable="pr")
    assert "precip, t2m" in str(err.value)
    with pytest.raises(GridRejected, match="units 'K' are not a rainfall depth"):
        read_grid(path, variable="t2m")
    assert read_grid(path, variable="t2m", kind="any").values.mean() == 290.0
    two = write_netcdf(tmp_path / "two.nc", {"a": days[0], "b": days[1]})
    with pytest.raises(GridRejected, match=r"several variables \(a, b\)"):
        read_grid(two)
    metres = write_netcdf(tmp_path / "era5.nc", {"tp": days[1].with_values(np.full((3, 4), 0.025))}, units="m")
    np.testing.assert_allclose(read_grid(metres).values, 25.0)  # ERA5 total precipitation in metres
    rate = write_netcdf(tmp_path / "rate.nc", {"pr": days[1]}, units="mm/h")
    with pytest.raises(GridRejected, match="summed to daily totals"):
        read_grid(rate)


def test_geotiff_bands_scales_and_missing_crs(tmp_path: Path) -> None:
    path = tmp_path / "two.tif"
    with rasterio.open(path, "w", driver="GTiff", height=2, width=2, count=2, dtype="int16", nodata=-1,
                       transform=Affine(0.5, 0, 100, 0, -0.5, 30), crs=None) as ds:  # fmt: skip
        ds.write(np.array([[[10, 20], [-1, 40]], [[1, 2], [3, 4]]], np.int16))
        ds.scales = (0.5, 1.0)
    g = read_grid(path)
    np.testing.assert_array_equal(g.values, [[5, 10], [np.nan, 20]])  # packed ×0.5, nodata → NaN
    assert g.crs.to_epsg() == 4326  # no CRS but a lon/lat extent
    assert read_grid(path, band=2).values.sum() == 10
    assert "band 2" in read_grid(path, band=2).source
    with pytest.raises(GridRejected, match=r"no band 3 \(the file has 2\)"):
        read_grid(path, band=3)
    with pytest.raises(GridRejected, match="differs from the expected"):
        read_grid(write_grid(g, tmp_path / "wgs.tif"), crs=4527)


def test_wrong_crs_is_refused(tmp_path: Path) -> None:
    # Gauss–Krüger coordinates without the zone prefix under the "with prefix" CRS
    no_prefix = Grid.regular(450_000.0, 3_080_000.0, 1000.0, np.ones((3, 3)), crs=4527)
    with pytest.raises(GridRejected, match="area of use") as err:
        read_grid(write_grid(no_prefix, tmp_path / "gk.tif"))
    assert "zone prefix" in str(err.value)
    metres_as_degrees = Grid.regular(450_000.0, 3_080_000.0, 1000.0, np.ones((3, 3)), crs=4490)
    with pytest.raises(GridRejected, match="not longitude/latitude"):
        read_grid(write_grid(metres_as_degrees, tmp_path / "deg.asc"))
    # with prefix and the right CRS: accepted
    assert read_grid(write_grid(Grid.regular(39_450_000.0, 3_080_000.0, 1000.0, np.ones((3, 3)), crs=4527),
                                tmp_path / "ok.tif")).crs.to_epsg() == 4527  # fmt: skip


@pytest.mark.parametrize(("fmt", "suffix"), FORMATS)
def test_bad_values_are_refused_in_every_format(tmp_path: Path, fmt: str, suffix: str) -> None:
    base = Grid.regular(118.0, 27.0, 0.1, np.ones((3, 4)), crs=4490)
    negative = base.with_values(np.array([[1, 2, 3, 4], [5, 6, -3, 8], [9, 10, 11, -1]], float))
    with pytest.raises(GridRejected, match=r"2 cell.* negative rainfall, first at row 1, column 2") as err:
        read_grid(write_grid(negative, tmp_path / f"neg{suffix}"))
    assert err.value.extra["row"] == 1 and err.value.extra["column"] == 2
    with pytest.raises(GridRejected, match="every cell is no data"):
        read_grid(write_grid(base.with_values(np.full((3, 4), np.nan)), tmp_path / f"nan{suffix}"))
    with pytest.raises(GridRejected, match="wrong units"):
        read_grid(write_grid(base.with_values(np.full((3, 4), 25_000.0)), tmp_path / f"big{suffix}"))
    # nodata written as -9999 but not declared: negative, with the hint
    undeclared = base.with_values(np.full((3, 4), -9999.0))
    path = write_grid(undeclared, tmp_path / f"undeclared{suffix}", nodata=-8888.0)
    with pytest.raises(GridRejected, match="undeclared nodata"):
        read_grid(path)


def test_corrupt_truncated_empty_missing_and_unknown_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00not really a tiff" * 10)
    with pytest.raises(GridRejected, match=r"junk\.tif: not a readable grid") as err:
        read_grid(junk)
    assert err.value.extra["file"] == "junk.tif"
    big = write_grid(Grid.regular(118.0, 27.0, 0.001, rain((300, 300))), tmp_path / "big.tif", compress="none")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    with pytest.raises(GridRejected, match=r"truncated\.tif"):
        read_grid(truncated)
    nc_as_tif = tmp_path / "model.tif"
    nc_as_tif.write_bytes(write_grid(Grid.regular(118.0, 27.0, 0.1, np.ones((2, 2))), tmp_path / "m.nc").read_bytes())
    with pytest.raises(GridRejected, match="not a GeoTIFF"):
        read_grid(nc_as_tif)
    (tmp_path / "empty.nc").write_bytes(b"")
    with pytest.raises(GridRejected, match="empty"):
        read_grid(tmp_path / "empty.nc")
    with pytest.raises(GridRejected, match="no such file"):
        read_grid(tmp_path / "gone.asc")
    with pytest.raises(GridRejected, match=r"unknown grid format \.xyz") as err:
        read_grid(tmp_path / "rain.xyz")
    assert "无法识别" in err.value.message_zh


def test_huge_files_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "sparse.tif"
    with rasterio.open(path, "w", driver="GTiff", height=20_000, width=20_000, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(0.001, 0, 100, 0, -0.001, 40), tiled=True,
                       sparse_ok=True) as ds:  # fmt: skip
        del ds  # 400 million cells, nothing written: a few kB on disk
    assert path.stat().st_size < 1_000_000
    with pytest.raises(GridRejected, match="20,000×20,000 cells exceed the limit of 60,000,000"):
        read_grid(path)
    small = write_grid(Grid.regular(118.0, 27.0, 0.1, np.ones((3, 4))), tmp_path / "small.nc")
    with pytest.raises(GridRejected, match="exceed the limit of 10"):
        read_grid(small, max_cells=10)


def test_a_plugin_reader_joins_the_registry(tmp_path: Path) -> None:
    def read_npy(path: Path, **_: object) -> Grid:
        return Grid.regular(118.0, 27.0, 0.1, np.load(path), source=path.name)

    register_reader("npy", read_npy, ".npy")
    try:
        np.save(tmp_path / "r.npy", np.ones((2, 2)))
        assert read_grid(tmp_path / "r.npy").values.sum() == 4
    finally:
        readers.READERS.pop("npy")
        readers._SUFFIX.pop(".npy")


@settings(max_examples=40, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        elements=st.one_of(st.just(np.nan), st.floats(0, 1999, allow_nan=False)),
    ),
    west=st.floats(70, 130),
    north=st.floats(10, 55),
    cell=st.sampled_from([0.01, 0.05, 0.1, 0.25]),
)
def test_esri_ascii_round_trip_property(tmp_path_factory: pytest.TempPathFactory, values: np.ndarray, west: float,
                                        north: float, cell: float) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("asc") / "p.asc"
    grid = Grid.regular(west, north, cell, values, crs=4490)
    if np.isnan(values).all():
        with pytest.raises(GridRejected, match="no data"):
            read_grid(write_grid(grid, path))
        return
    back = read_grid(write_grid(grid, path))
    np.testing.assert_array_equal(back.values, values.astype(np.float32))
    assert back.transform.almost_equals(grid.transform, precision=1e-9)
