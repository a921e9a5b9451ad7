"""`tabsynth sample` streamed in chunks: the same rows as the chunks drawn, keys unique across chunks, --where and
--rebalance kept in every chunk, and nothing left behind when a write fails."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tabsynth.io.atomic import atomic_file
from tabsynth.io.files import write_table
from tabsynth.io.stream import write_chunks
from tabsynth.models.base import load_model
from tabsynth.run.options import SampleOptions
from tabsynth.run.sample import sample_file, synthetic_chunks
from tabsynth.table.values import as_text_columns


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A copula folder of a table with an integer key, a text key, a category, a number and a date."""
    import tabsynth

    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({
        "record_id": np.arange(1, n + 1), "patient_id": [f"P{100000 + i}" for i in range(n)],
        "ward": rng.choice(["cardiology", "oncology", "surgery", "icu"], n),
        "age": rng.integers(18, 95, n), "admitted": pd.date_range("2023-01-01", periods=n, freq="13h")})
    folder = tmp_path_factory.mktemp("stream") / "model"
    tabsynth.Synthesizer("copula").fit(frame).save(folder)
    return folder


def sample_options(folder, out, **kwargs) -> SampleOptions:
    return SampleOptions(model_dir=folder, out=out, rows=kwargs.pop("rows", 250), where=kwargs.pop("where", None),
                         rebalance=kwargs.pop("rebalance", None), seed=kwargs.pop("seed", 5), overwrite=False)


def drawn_chunks(folder, rows: int, chunk_rows: int, **kwargs) -> list[pd.DataFrame]:
    model, schema = load_model(folder)
    return list(synthetic_chunks(model, schema, rows, np.random.default_rng(5), chunk_rows=chunk_rows, **kwargs))


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_the_file_holds_the_chunks_drawn_for_the_seed(model_folder, tmp_path, suffix):
    out = tmp_path / f"rows.{suffix}"
    assert sample_file(sample_options(model_folder, out), chunk_rows=64) == 250
    chunks = drawn_chunks(model_folder, 250, 64)
    assert [len(c) for c in chunks] == [64, 64, 64, 58]
    back = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
    expected = as_text_columns(pd.concat(chunks, ignore_index=True))  # text drawn as Categoricals reads back plain
    assert isinstance(pd.concat(chunks)["ward"].dtype, pd.CategoricalDtype) and back["ward"].dtype == object
    if suffix == "csv":  # text round trip: compare as the CSV reader sees the one-write file
        write_table(expected, tmp_path / "one.csv", "csv", {})
        expected = pd.read_csv(tmp_path / "one.csv")
    pd.testing.assert_frame_equal(back, expected)
    if suffix == "parquet":
        assert pq.ParquetFile(out).num_row_groups == 4


def test_chunked_parquet_equals_one_write(model_folder, tmp_path):
    chunks = drawn_chunks(model_folder, 250, 100)
    write_chunks(iter(chunks), tmp_path / "chunked.parquet", "parquet")  # text drawn as Categoricals
    write_table(as_text_columns(pd.concat(chunks, ignore_index=True)), tmp_path / "one.parquet", "parquet", {})
    back = pd.read_parquet(tmp_path / "chunked.parquet")
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "one.parquet"))
    assert pq.read_schema(tmp_path / "chunked.parquet").equals(pq.read_schema(tmp_path / "one.parquet"))


def test_text_drawn_as_categoricals_holds_the_values_drawn_as_objects(model_folder):
    from tabsynth.table.codecs import CategoryCodec

    model, _ = load_model(model_folder)
    as_objects, as_categories = model.sample(500, rng=8), model.sample(500, rng=8, categorical=True)
    assert isinstance(as_categories["ward"].dtype, pd.CategoricalDtype) and as_objects["ward"].dtype == object
    pd.testing.assert_frame_equal(as_text_columns(as_categories), as_objects)
    codec = CategoryCodec("ward", "object", ("icu", "surgery"), nullable=True)
    codes = np.array([0, 1, 2, 1, 0])  # 2: missing
    decoded = codec.decode(codes, np.random.default_rng(0), categorical=True)
    assert as_text_columns(decoded.to_frame())["ward"].tolist() == ["icu", "surgery", None, "surgery", "icu"]
    assert codec.decode(codes, np.random.default_rng(0)).tolist() == ["icu", "surgery", None, "surgery", "icu"]


def test_keys_are_unique_across_chunks(model_folder):
    rows = pd.concat(drawn_chunks(model_folder, 1000, 64), ignore_index=True)
    assert sorted(rows["record_id"]) == list(range(1, 1001))  # 1..n, as one draw numbers them
    present = rows["patient_id"].dropna()
    assert present.is_unique and present.str.fullmatch(r"[0-9A-F]{12}").all() and len(present) > 900


def test_where_holds_in_every_chunk_and_rebalance_keeps_the_total_share(model_folder):
    for chunk in drawn_chunks(model_folder, 300, 64, where="age >= 60 and ward == 'icu'"):
        assert len(chunk) and (chunk["age"] >= 60).all() and (chunk["ward"] == "icu").all()
    chunks = drawn_chunks(model_folder, 301, 64, rebalance="ward='oncology'=0.3")
    hits = [int((c["ward"] == "oncology").sum()) for c in chunks]
    assert sum(hits) == round(301 * 0.3) and all(abs(h - 0.3 * len(c)) <= 1 for h, c in zip(hits, chunks, strict=True))


def test_a_failed_streamed_write_leaves_nothing(model_folder, tmp_path):
    chunks = drawn_chunks(model_folder, 200, 100)

    def failing():
        yield chunks[0]
        raise RuntimeError("disk full")

    out = tmp_path / "rows.parquet"
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(out) as partial:
        write_chunks(failing(), partial, "parquet")
    assert list(tmp_path.iterdir()) == []


def test_the_ungated_note_is_bound_to_the_streamed_file(model_folder, tmp_path):
    from tabsynth.io.files import file_sha256

    out = tmp_path / "rows.parquet"
    sample_file(sample_options(model_folder, out, rebalance="ward='icu'=0.5"), chunk_rows=64)
    note = (tmp_path / "rows.parquet.UNGATED.txt").read_text()
    assert f"sha256 {file_sha256(out)}" in note and "250 rows" in note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet", "rows.parquet.UNGATED.txt"]
