"""The model: effective rainfall, threshold tables, susceptibility, levels — by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from geowarn.errors import GridRejected, InvalidInput
from geowarn.regional import model
from geowarn.regional.grid import Grid
from geowarn.regional.model import HIGH, LOW, MEDIUM, NONE, ModelConfig, ThresholdTable
from geowarn.regional.susceptibility import Zoning, grades_on

CELL = 0.1
nan = np.nan


def g(values: list[list[float]], west: float = 118.0, north: float = 27.0, dtype: type = np.float64) -> Grid:
    return Grid.regular(west, north, CELL, np.array(values, dtype))


def test_effective_rainfall_by_hand() -> None:
    today = g([[40, 60], [100, 200]])
    yesterday = g([[20, 20], [20, nan]])
    before = g([[10, 10], [10, 10]])
    eff = model.effective_rainfall([today, yesterday, before], k=0.8)
    # 40 + 0.8·20 + 0.64·10 = 62.4; 60 + 16 + 6.4 = 82.4; 100 + 22.4 = 122.4; 200 + 0 (missing) + 6.4 = 206.4
    np.testing.assert_allclose(eff.values, [[62.4, 82.4], [122.4, 206.4]])
    assert model.effective_rainfall([today]).values.tolist() == today.values.tolist()
    assert np.isnan(model.effective_rainfall([g([[nan]]), g([[50.0]])]).values[0, 0])  # unknown R_0 stays unknown
    # Fujian: k = 0.79 over three antecedent days; the fourth day before is left out
    days = [g([[v]]) for v in (30.0, 40.0, 20.0, 10.0, 100.0)]
    fj = model.effective_rainfall(days, model.FUJIAN.k, model.FUJIAN.antecedent_days)
    assert fj.values[0, 0] == pytest.approx(30 + 0.79 * 40 + 0.79**2 * 20 + 0.79**3 * 10)
    assert model.effective_rainfall(days, 0.5, 0).values[0, 0] == 30.0
    assert model.effective_rainfall([g([[1.0]], dtype=np.float32)] * 2).values.dtype == np.float32
    with pytest.raises(InvalidInput, match="decay"):
        model.effective_rainfall(days, k=1.5)
    with pytest.raises(GridRejected, match="no rainfall"):
        model.effective_rainfall([])
    with pytest.raises(GridRejected, match="does not match"):
        model.effective_rainfall([g([[1.0]]), g([[1.0]], west=119.0)])


def test_warning_period_rain_is_observed_plus_forecast() -> None:
    observed = g([[12.0, nan, 5.0, nan]])
    forecast = g([[30.0, 40.0, nan, nan]])
    r0 = model.warning_period_rain(observed, forecast).values
    np.testing.assert_array_equal(r0, [[42.0, 40.0, 5.0, nan]])


def test_levels_of_a_four_by_four_grid_by_hand() -> None:
    grades = g([[HIGH, HIGH, MEDIUM, MEDIUM], [HIGH, HIGH, MEDIUM, MEDIUM], [LOW, LOW, NONE, NONE],
                [LOW, LOW, NONE, NONE]])  # fmt: skip
    rain = g([[49.9, 50, 70, 87.5], [110, 160, 137.5, 250], [79.9, 176, 500, nan], [nan, 256, 0, 1000]])
    # high 50/70/110/160; medium ×1.25 = 62.5/87.5/137.5/200; low ×1.6 = 80/112/176/256; none: never
    expected = [[0, 1, 1, 2], [3, 4, 3, 4], [0, 3, 0, 0], [0, 4, 0, 0]]
    levels = model.level_grid(rain, grades, ThresholdTable())
    assert levels.dtype == np.uint8 and levels.tolist() == expected
    as_f32 = rain.with_values(rain.values.astype(np.float32))
    assert model.level_grid(as_f32, grades, ThresholdTable()).tolist() == expected
    # without zoning every cell is high
    assert model.level_grid(rain, None, ThresholdTable()).tolist() == [[0, 1, 2, 2], [3, 4, 3, 4], [2, 4, 4, 0],
                                                                        [0, 4, 0, 4]]  # fmt: skip
    # a table warning not-susceptible ground too
    table = ThresholdTable.from_dict({"high": [50, 70, 110, 160], "none": [300, 400, 500, 600]})
    assert model.level_grid(rain, grades, table)[2:, 2:].tolist() == [[3, 0], [0, 4]]


def test_threshold_tables() -> None:
    default = ThresholdTable()
    assert default.by_grade == {HIGH: (50, 70, 110, 160), MEDIUM: (62.5, 87.5, 137.5, 200),
                                LOW: (80, 112, 176, 256)}  # fmt: skip
    # rows per grade (Chinese names too); grades left out follow from "high" by the default factors
    t = ThresholdTable.from_dict({"高易发": [40, 60, 100, 150], "低易发": [90, 120, 180, 260]})
    assert t.by_grade[HIGH] == (40, 60, 100, 150) and t.by_grade[LOW] == (90, 120, 180, 260)
    assert t.by_grade[MEDIUM] == (50, 75, 125, 187.5) and NONE not in t.by_grade
    scaled = ThresholdTable.from_dict({"base": [60, 80, 120, 180], "factors": {"medium": 1.5}})
    assert scaled.by_grade == {HIGH: (60, 80, 120, 180), MEDIUM: (90, 120, 180, 270)}
    assert ThresholdTable.from_dict(default.to_dict()).by_grade == default.by_grade
    assert np.isinf(default.lookup()[NONE]).all() and default.lookup()[LOW].tolist() == [80, 112, 176, 256]
    bad = [
        ({"high": [50, 40, 110, 160]}, "increasing"),
        ({"high": [50, 70, 110]}, "four"),
        ({"high": [0, 70, 110, 160]}, "positive"),
        ({"high": ["a", 70, 110, 160]}, "four numbers"),
        ({"severe": [1, 2, 3, 4]}, "unknown susceptibility grade"),
        ({"base": [50, 70, 110, 160], "factors": {"medium": -1}}, "positive"),
        ({"base": [50, 70, 110, 160], "high": [1, 2, 3, 4]}, "unexpected keys"),
        ({}, "mapping"),
    ]
    for doc, match in bad:
        with pytest.raises(InvalidInput, match=match):
            ThresholdTable.from_dict(doc)


def test_model_config_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(
        "k: 0.79\nantecedent_days: 3\nthresholds:\n  high: [45, 65, 100, 150]\n  中易发: [60, 85, 130, 190]\n"
    )
    cfg = ModelConfig.from_yaml(path)
    assert cfg.k == 0.79 and cfg.antecedent_days == 3
    assert cfg.thresholds.by_grade[MEDIUM] == (60, 85, 130, 190) and cfg.thresholds.by_grade[LOW][0] == 72
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_yaml("k: 0.9").thresholds.by_grade == ThresholdTable().by_grade
    for text, match in [("k: 2", "decay"), ("- 1", "mapping"), ("k: [", "not YAML"), ("kk: 1", "unknown keys"),
                        ("antecedent_days: x", "numbers")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=match):
            ModelConfig.from_yaml(text)


def test_zoning_polygons_are_burnt_by_cell_centre_higher_grade_on_top() -> None:
    like = g([[0] * 4] * 2)  # 118.0-118.4, 26.8-27.0
    west_half = shapely.box(118.0, 26.8, 118.2, 27.0)
    centre = shapely.box(118.12, 26.8, 118.28, 26.9)  # holds the centres of cells (1, 1) and (1, 2)
    zoning = Zoning([centre, west_half], [HIGH, LOW])
    assert grades_on(like, zoning).tolist() == [[LOW, LOW, NONE, NONE], [LOW, HIGH, HIGH, NONE]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(west_half), "properties": {"grade": "中易发"}},
        {"type": "Feature", "geometry": shapely.geometry.mapping(centre), "properties": {"grade": 3}},
    ]}  # fmt: skip
    sus = model.susceptibility_from_geojson(doc, like)
    assert sus.values.tolist() == [[MEDIUM, MEDIUM, NONE, NONE], [MEDIUM, HIGH, HIGH, NONE]]
    for bad, match in [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": [{"geometry": None, "properties": {"grade": "extreme"}}]},
         "feature 1: grade='extreme' is not a grade"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "Point", "coordinates": [118, 27]},
                                                     "properties": {"grade": "high"}}]}, "feature 1: needs a valid"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "Polygon"}, "properties": {"grade": 1}}]},
         "feature 1: bad geometry"),
    ]:  # fmt: skip
        with pytest.raises(GridRejected, match=match):
            model.susceptibility_from_geojson(bad, like)


def test_zoning_in_gauss_krueger_onto_a_lon_lat_grid() -> None:
    like = Grid.regular(116.4, 27.9, 0.01, np.zeros((20, 30)), crs=4490)
    box_ll = shapely.box(116.45, 27.8, 116.6, 27.85)
    from pyproj import Transformer

    tf = Transformer.from_crs(4490, 4527, always_xy=True)
    box_gk = shapely.transform(box_ll, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))
    in_ll = grades_on(like, Zoning([box_ll], [HIGH], 4490))
    in_gk = grades_on(like, Zoning([box_gk], [HIGH], 4527))
    assert in_ll.sum() == 3 * 15 * 5 and (in_ll != in_gk).sum() <= 4  # the same cells, edges within rounding


def test_susceptibility_rasters_are_checked_and_resampled() -> None:
    like = g([[0] * 4] * 2)
    fine = Grid.regular(
        118.0, 27.0, 0.05, np.array([[1, 1, 2, 2, 3, 3, 0, 0]] * 2 + [[1, 3, 0, 0, 2, 1, 0, np.nan]] * 2)
    )
    # a coarse cell takes the highest grade of the fine cells in it (conservative)
    assert grades_on(like, fine).tolist() == [[1, 2, 3, 0], [3, 0, 2, 0]]
    with pytest.raises(GridRejected, match=r"value 5 at row 0, column 1 is not a grade"):
        grades_on(like, g([[1, 5, 2, 2], [1, 1, 1, 1]]))
    elsewhere = Grid.regular(100.0, 40.0, 0.1, np.ones((2, 2)))
    with pytest.raises(GridRejected, match="does not overlap"):
        grades_on(like, elsewhere)
