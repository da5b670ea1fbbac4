"""Chunked readers (etl.readers): every format, encodings, broken files and flat memory.

No database needed: fixture files are built in ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely

from etl import readers
from etl.readers import Chunk, SourceError, count_hint, read_chunks, sniff_columns

STREETS = ["龙田街道", "坑梓街道", "坪山街道", "马峦街道", "碧岭街道", "石井街道"]


def _streets(n: int = 6, crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    """Points named after Pingshan's streets, with a number and a blank column."""
    return gpd.GeoDataFrame(
        {"name": [STREETS[i % 6] for i in range(n)], "n": list(range(n)),
         "note": [None if i % 2 else f"备注{i}" for i in range(n)]},
        geometry=[shapely.Point(114.3 + i / 100, 22.7) for i in range(n)], crs=crs,
    )


def _read_all(path, **kwargs) -> tuple[list[Chunk], pd.DataFrame]:
    """All chunks and their frames concatenated."""
    chunks = list(read_chunks(path, **kwargs))
    return chunks, pd.concat([c.frame for c in chunks], ignore_index=True)


def _shapefile(folder: Path, encoding: str | None = None, n: int = 6) -> Path:
    """A shapefile of :func:`_streets` in ``folder``; returns the .shp path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "streets.shp"
    pyogrio.write_dataframe(_streets(n), path, encoding=encoding)
    return path


def _zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """Zip every file of ``folder`` under ``prefix`` inside the archive."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, prefix + file.name)
    return target


def _write_csv(path: Path, rows: int, columns: int = 6) -> Path:
    """A plain UTF-8 CSV of ``rows`` records, each value unique per cell."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(",".join(f"col{c}" for c in range(columns)) + "\n")
        for r in range(rows):
            handle.write(",".join(f"v{r}_{c}" for c in range(columns)) + "\n")
    return path


# --------------------------------------------------------------------------- vector


def test_geojson_streams_in_chunks_with_str_values(tmp_path):
    path = tmp_path / "streets.geojson"
    _streets(25).to_file(path)

    chunks, frame = _read_all(path, chunk_rows=10)

    assert [c.first_row for c in chunks] == [1, 11, 21]
    assert [len(c.frame) for c in chunks] == [10, 10, 5]
    assert all(len(c.geometry) == len(c.frame) for c in chunks)
    assert all(list(c.frame.index) == list(range(len(c.frame))) for c in chunks)
    assert chunks[0].crs == "EPSG:4326" and chunks[0].path == path
    assert list(frame.columns) == ["name", "n", "note"]
    assert frame.loc[0].tolist() == ["龙田街道", "0", "备注0"]
    assert frame.loc[1, "note"] is None
    assert all(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes)
    assert shapely.get_type_id(chunks[2].geometry).tolist() == [0] * 5
    assert sniff_columns(path) == ["name", "n", "note"]
    assert count_hint(path) == 25


def test_geojson_list_property_becomes_json_text(tmp_path):
    path = tmp_path / "lists.geojson"
    feature = {"type": "Feature", "properties": {"tags": [1, 2], "ok": True},
               "geometry": {"type": "Point", "coordinates": [114.3, 22.7]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))

    (chunk,) = read_chunks(path)

    assert json.loads(chunk.frame.loc[0, "tags"]) == [1, 2]
    assert chunk.frame.loc[0, "ok"] == "true"


def test_gpkg_reads_first_layer_or_the_named_one(tmp_path):
    path = tmp_path / "two.gpkg"
    _streets(4, crs="EPSG:4547").to_file(path, layer="points")
    gpd.GeoDataFrame({"code": ["440310"]}, geometry=[shapely.box(0, 0, 1, 1)],
                     crs="EPSG:4490").to_file(path, layer="district")

    (first,) = read_chunks(path)
    (second,) = read_chunks(path, layer="district")

    assert len(first.frame) == 4 and first.crs == "EPSG:4547"
    assert second.frame.to_dict("records") == [{"code": "440310"}]
    assert second.crs == "EPSG:4490" and second.geometry[0].geom_type == "Polygon"
    assert sniff_columns(path, layer="district") == ["code"]
    with pytest.raises(SourceError, match="no layer 'nope'; layers are points, district"):
        list(read_chunks(path, layer="nope"))


def test_shapefile_folder_with_cpg(tmp_path):
    shp = _shapefile(tmp_path / "folder")
    assert shp.with_suffix(".cpg").exists()

    chunks, frame = _read_all(tmp_path / "folder")

    assert chunks[0].path == shp
    assert frame["name"].tolist() == STREETS
    assert chunks[0].crs == "EPSG:4326"
    assert count_hint(tmp_path / "folder") == 6


def test_gbk_shapefile_without_cpg_falls_back_to_gb18030(tmp_path):
    shp = _shapefile(tmp_path / "gbk", encoding="GBK")
    shp.with_suffix(".cpg").unlink()
    assert "龙田街道".encode("gbk") in shp.with_suffix(".dbf").read_bytes()

    _, frame = _read_all(shp)
    _, forced = _read_all(shp, encoding="GBK")

    assert frame["name"].tolist() == STREETS
    assert frame["note"].tolist()[:2] == ["备注0", None]
    assert forced["name"].tolist() == STREETS


def test_undeclared_encoding_beyond_the_sniffed_part_names_the_row(tmp_path, monkeypatch):
    folder = tmp_path / "late"
    folder.mkdir()
    names = ["abc"] * 300 + ["龙田街道"]
    frame = gpd.GeoDataFrame({"name": names}, geometry=[shapely.Point(0, 0)] * 301, crs=4326)
    pyogrio.write_dataframe(frame, folder / "late.shp", encoding="GBK")
    (folder / "late.cpg").unlink()
    monkeypatch.setattr(readers, "DBF_SNIFF_BYTES", 1000)  # sees only ASCII records

    with pytest.raises(SourceError, match="not valid UTF-8.*pass encoding=") as caught:
        list(read_chunks(folder, chunk_rows=100))

    assert (caught.value.row, caught.value.field) == (301, "name")
    (chunk,) = read_chunks(folder, encoding="GBK", chunk_rows=1000)
    assert chunk.frame["name"].iloc[-1] == "龙田街道"


def test_zip_of_shapefile_in_a_subfolder(tmp_path):
    _shapefile(tmp_path / "src")
    archive = _zip_folder(tmp_path / "src", tmp_path / "streets.zip", prefix="data/")

    (chunk,) = read_chunks(archive)

    assert chunk.path == archive / "data" / "streets.shp"
    assert chunk.frame["name"].tolist() == STREETS
    assert chunk.crs == "EPSG:4326"
    assert sniff_columns(archive) == ["name", "n", "note"]
    assert count_hint(archive) == 6


def test_zip_of_gbk_shapefile_without_cpg(tmp_path):
    _shapefile(tmp_path / "src", encoding="GBK").with_suffix(".cpg").unlink()
    archive = _zip_folder(tmp_path / "src", tmp_path / "gbk.zip")

    (chunk,) = read_chunks(archive)

    assert chunk.frame["name"].tolist() == STREETS


def test_zip_with_two_shapefiles_needs_layer(tmp_path):
    _shapefile(tmp_path / "src")
    pyogrio.write_dataframe(_streets(2), tmp_path / "src" / "other.shp")
    archive = _zip_folder(tmp_path / "src", tmp_path / "two.zip")

    with pytest.raises(SourceError, match="several datasets.*pass layer="):
        list(read_chunks(archive))
    (chunk,) = read_chunks(archive, layer="other")
    assert len(chunk.frame) == 2


def test_truncated_zip_is_a_source_error(tmp_path):
    _shapefile(tmp_path / "src", n=200)
    archive = _zip_folder(tmp_path / "src", tmp_path / "whole.zip")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    with pytest.raises(SourceError, match=r"not a complete zip archive \(truncated or corrupt\)"):
        list(read_chunks(cut))
    assert count_hint(cut) is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"type": "FeatureCollection", "features": [{"type": "Feat', "invalid GeoJSON"),
        ("hello, world", "does not recognise it"),
        ("", "empty"),
    ],
)
def test_broken_geojson_is_a_source_error(tmp_path, content, reason):
    path = tmp_path / "broken.geojson"
    path.write_text(content)

    with pytest.raises(SourceError, match=reason) as caught:
        list(read_chunks(path))

    assert str(caught.value).startswith(f"Cannot read {path}")
    assert "Traceback" not in str(caught.value) and "It might help" not in str(caught.value)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_chunks(tmp_path / "nope.geojson")
    (tmp_path / "a.dwg").write_bytes(b"AC1032")
    with pytest.raises(SourceError, match="unsupported file type '.dwg'"):
        read_chunks(tmp_path / "a.dwg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="contains no shapefile"):
        list(read_chunks(tmp_path / "empty"))


# --------------------------------------------------------------------------- CSV


def test_csv_utf8_with_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("名称,人口,备注\n龙田街道,1200,\n坑梓街道,,NA\n".encode("utf-8-sig"))

    (chunk,) = read_chunks(path)

    assert list(chunk.frame.columns) == ["名称", "人口", "备注"]
    assert chunk.frame.to_dict("records") == [
        {"名称": "龙田街道", "人口": "1200", "备注": None},
        {"名称": "坑梓街道", "人口": None, "备注": "NA"},
    ]
    assert chunk.geometry is None and chunk.crs is None and chunk.first_row == 1
    assert sniff_columns(path) == ["名称", "人口", "备注"]
    assert count_hint(path) is None


def test_csv_with_only_a_header_has_no_chunks(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")

    assert list(read_chunks(path)) == []
    assert sniff_columns(path) == ["a", "b"]


def test_csv_in_gbk(tmp_path):
    path = tmp_path / "gbk.csv"
    text = "街道,社区\n" + "".join(f"{s},{s[:2]}社区\n" for s in STREETS)
    path.write_bytes(text.encode("gbk"))

    _, frame = _read_all(path)

    assert list(frame.columns) == ["街道", "社区"]
    assert frame["街道"].tolist() == STREETS
    assert frame.loc[0, "社区"] == "龙田社区"


def test_csv_tab_separated_txt_and_quoted_newlines(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text('a\tb\n1\t"two\nlines"\n3\t4\n', encoding="utf-8")

    (chunk,) = read_chunks(path)

    assert chunk.frame.to_dict("records") == [{"a": "1", "b": "two\nlines"}, {"a": "3", "b": "4"}]


def test_csv_bad_line_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")

    with pytest.raises(SourceError, match="line 4 has 4 fields but the header has 3") as caught:
        list(read_chunks(path, chunk_rows=1))

    assert caught.value.row == 3


def test_csv_unclosed_quote(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('a,b\n1,2\n3,"4\n5,6\n')

    with pytest.raises(SourceError, match="never closed") as caught:
        list(read_chunks(path))

    assert caught.value.row == 2


def test_csv_decode_error_mid_file_names_the_row(tmp_path):
    path = tmp_path / "mixed.csv"
    rows = 40_000  # ~1.1 MB of UTF-8 before the GBK line, beyond the sniffed head
    body = "".join(f"{i},utf8-名称-{i:08d}\n" for i in range(rows))
    path.write_bytes(b"id,name\n" + body.encode() + "9,龙田街道\n".encode("gbk"))

    with pytest.raises(SourceError, match=f"line {rows + 2} holds bytes") as caught:
        list(read_chunks(path, chunk_rows=10_000))

    assert caught.value.row == rows + 1


def test_csv_duplicate_and_empty_column_names(tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("a,b,a\n1,2,3\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("a,,c\n1,2,3\n")

    with pytest.raises(SourceError, match="'a' appears more than once") as caught:
        read_chunks(dup)
    assert caught.value.field == "a"
    with pytest.raises(SourceError, match="header field 2 is empty"):
        sniff_columns(empty)


def test_csv_chunking_120k_rows(tmp_path):
    path = _write_csv(tmp_path / "big.csv", 120_000, columns=3)

    chunks = list(read_chunks(path, chunk_rows=50_000))

    assert [c.first_row for c in chunks] == [1, 50_001, 100_001]
    assert [len(c.frame) for c in chunks] == [50_000, 50_000, 20_000]
    assert chunks[1].frame.loc[0, "col0"] == "v50000_0"
    assert chunks[2].frame.iloc[-1].tolist() == ["v119999_0", "v119999_1", "v119999_2"]
    assert sum(len(c.frame) for c in chunks) == 120_000


def test_csv_chunks_of_wide_rows_are_shorter(tmp_path, monkeypatch):
    """A chunk holds about CSV_CHUNK_BYTES of the file, so wide rows do not raise the
    memory a load needs; every row still comes, in order."""
    monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", 1_500_000)
    path = tmp_path / "wide.csv"
    path.write_text("id,text\n" + "".join(f"{i},{'x' * 1000}\n" for i in range(5_000)))

    chunks = list(read_chunks(path, chunk_rows=100_000))

    assert 1_400 <= len(chunks[0].frame) <= 1_500  # 1.5 MB of 1 kB rows
    assert sum(len(c.frame) for c in chunks) == 5_000
    assert [c.first_row for c in chunks] == list(range(1, 5_001, len(chunks[0].frame)))
    narrow = _write_csv(tmp_path / "narrow.csv", 3_000, columns=3)
    assert [len(c.frame) for c in read_chunks(narrow, chunk_rows=2_000)] == [2_000, 1_000]


def test_csv_memory_stays_flat(tmp_path):
    path = _write_csv(tmp_path / "200k.csv", 200_000)
    whole = pd.read_csv(path, dtype=object).memory_usage(deep=True).sum()

    tracemalloc.start()
    try:
        rows = sum(len(chunk.frame) for chunk in read_chunks(path, chunk_rows=10_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows == 200_000
    assert peak < whole / 4, f"peak {peak / 1e6:.1f} MB vs whole file {whole / 1e6:.1f} MB"


# --------------------------------------------------------------------------- XLSX


def test_xlsx_normal(tmp_path):
    path = tmp_path / "table.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "封面"
    sheet.append(["ignored"])
    data = book.create_sheet("数据")
    data.append(["名称", "日期", "时间", "数量", "比例", "有效"])
    data.append(["龙田街道", dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, 8, 30), 12, 0.5, True])
    data.append([])
    data.append(["坑梓街道", None, None, 3.0, None, False])
    data.append([])
    data.append([])
    book.save(path)

    (chunk,) = read_chunks(path, layer="数据")

    assert chunk.frame.to_dict("records") == [
        {"名称": "龙田街道", "日期": "2024-05-01", "时间": "2024-05-01T08:30:00", "数量": "12",
         "比例": "0.5", "有效": "true"},
        {"名称": None, "日期": None, "时间": None, "数量": None, "比例": None, "有效": None},
        {"名称": "坑梓街道", "日期": None, "时间": None, "数量": "3", "比例": None,
         "有效": "false"},
    ]
    assert chunk.geometry is None and chunk.first_row == 1
    assert sniff_columns(path) == ["ignored"]
    assert sniff_columns(path, layer="数据")[:2] == ["名称", "日期"]
    with pytest.raises(SourceError, match="no sheet 'x'"):
        read_chunks(path, layer="x")


def test_xlsx_chunks(tmp_path):
    path = tmp_path / "rows.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["id"])
    for i in range(25):
        book.active.append([i])
    book.save(path)

    chunks = list(read_chunks(path, chunk_rows=10))

    assert [c.first_row for c in chunks] == [1, 11, 21]
    assert chunks[2].frame["id"].tolist() == ["20", "21", "22", "23", "24"]
    assert count_hint(path) == 25


def test_xlsx_merged_header_cells(tmp_path):
    path = tmp_path / "merged.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["编号", "地址", None, "人口"])
    sheet.append(["1", "坪山区", "龙田街道", 100])
    sheet.merge_cells("B1:C1")
    book.save(path)

    with pytest.raises(SourceError, match="header cell C1 is empty; merged or empty header"):
        list(read_chunks(path))


def test_xlsx_merged_trailing_header_cell(tmp_path):
    path = tmp_path / "trailing.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["编号", "地址"])
    sheet.append(["1", "坪山区", "龙田街道"])
    sheet.merge_cells("B1:C1")
    book.save(path)

    with pytest.raises(SourceError, match="cell C2 has a value but header cell C1 is empty"):
        list(read_chunks(path))


def test_xlsx_duplicate_header(tmp_path):
    path = tmp_path / "dup.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["a", "b", "a"])
    book.save(path)

    with pytest.raises(SourceError, match="header cell C1 repeats the column name 'a'"):
        sniff_columns(path)


def test_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("not a zip")

    with pytest.raises(SourceError, match="not a readable .xlsx workbook"):
        read_chunks(path)


# --------------------------------------------------------------------------- real files


def test_real_nyc311_sample(shared_data):
    path = shared_data / "real" / "nyc311_2011_sample.csv"

    chunks, frame = _read_all(path)

    assert frame.shape == (999, 41)
    assert list(frame.columns) == sniff_columns(path)
    assert frame["Unique Key"].notna().all()


def test_real_pingshan_district(shared_data):
    path = shared_data / "pingshan" / "district_440310_gcj02.geojson"

    (chunk,) = read_chunks(path)

    assert len(chunk.geometry) == len(chunk.frame) == 1
    assert chunk.geometry[0].geom_type == "MultiPolygon"
    assert isinstance(chunk.geometry, np.ndarray)
