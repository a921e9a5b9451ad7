"""`release --engine duckdb` end to end: hash split, streamed sampling, validation on samples, private spill folders."""

import dataclasses
import stat
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scale_duckdb import both, codecs_for, mixed, parquet  # noqa: F401  (fixtures)

from tabsynth.errors import InputError
from tabsynth.scale import sql
from tabsynth.scale.duckdb_counts import DuckDBCounts


@pytest.fixture
def dp_policy(tmp_path):
    """The gate's figures are tested elsewhere; this policy only checks the spending."""
    path = tmp_path / "dp.yaml"
    path.write_text("name: dp\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n")
    return path


@pytest.fixture
def narrow(tmp_path):
    """Few columns: the release's report draws one plot per column."""
    path = tmp_path / "narrow.parquet"
    mixed(2000)[["age", "pay", "ward", "seen"]].to_parquet(path)
    return path


def small_release(parquet, tmp_path, policy, **changes):  # noqa: F811 (a fixture)
    from tabsynth.run.options import ReleaseOptions

    options = ReleaseOptions(data=parquet, out=tmp_path / "rel", model="dp-marginal", epsilon=1.0, delta=1e-8,
                             seed=3, policy=str(policy), ledger=f"sqlite:///{tmp_path / 'ledger.db'}",
                             model_params={"rounds": 3, "iterations": 10, "final_iterations": 20, "degree": 2},
                             source_id="mixed")
    return dataclasses.replace(options, **changes)


def test_the_out_of_core_release_publishes_a_folder_validated_on_samples(narrow, tmp_path, dp_policy, monkeypatch):
    import json

    from tabsynth.run import out_of_core as release

    monkeypatch.setattr(release, "CHUNK_ROWS", 700)  # several chunks from a small table
    result = release.release_out_of_core(small_release(narrow, tmp_path, dp_policy))
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert result.verdict.passed and manifest["released"]
    assert manifest["validation_sample"]["rows_per_part"] == release.VALIDATION_ROWS
    assert "95% confidence" in manifest["validation_sample"]["note"]
    assert "rows" not in manifest["input"] and manifest["input"]["engine"] == "duckdb"
    synthetic = pd.read_parquet(result.out / "synthetic.parquet")
    assert len(synthetic) == manifest["outputs"]["synthetic.parquet"]["rows"] == manifest["sampling"]["rows"]
    assert list(synthetic.columns) == ["age", "pay", "ward", "seen"]
    assert "Validated on samples" in (result.out / "report.html").read_text()
    assert 0 < manifest["privacy"]["epsilon"] <= 1


def test_the_out_of_core_gate_of_a_dp_release_reads_no_private_row(narrow, tmp_path):
    """Rules on private-row checks (here failing whatever the model) are an internal assessment: the release
    goes ahead; its manifest holds no input hash and the failures are in internal/assessment.json."""
    import json

    from tabsynth.io.files import file_sha256
    from tabsynth.run import out_of_core as release

    policy = tmp_path / "strict.yaml"
    policy.write_text("name: strict\nrules:\n  - {metric: dp_epsilon, op: '<=', threshold: 1}\n"
                      "  - {metric: mean_column_tvd, op: '<', threshold: 0}\n"
                      "  - {metric: exact_copy_rate, op: '<', threshold: 0}\n")
    result = release.release_out_of_core(small_release(narrow, tmp_path, policy, source_id="narrow"))
    text = (result.out / "manifest.json").read_text()
    internal = json.loads((result.out / "internal" / "assessment.json").read_text())
    assert result.verdict.passed and [rule["metric"] for rule in json.loads(text)["gate"]["rules"]] == ["dp_epsilon"]
    assert {rule["metric"] for rule in internal["gate"]["rules"] if not rule["passed"]} == {
        "mean_column_tvd", "exact_copy_rate"}
    assert file_sha256(narrow) not in text and internal["input"]["sha256"] == file_sha256(narrow)


def test_the_hash_split_is_fixed_by_its_salt_and_keeps_about_the_share(both):  # noqa: F811 (a fixture)
    from tabsynth.run.out_of_core import split_counts

    _, duck, schema = both
    sizes = [tuple(part.rows(f"SELECT COUNT(*) FROM {part.source} AS _t")[0][0]
                   for part in split_counts(duck, schema, 0.2, salt)) for salt in (1, 1, 2)]
    assert sizes[0] == sizes[1] != sizes[2]
    assert sum(sizes[0]) == 3000 and abs(sizes[0][1] - 600) < 100


def test_out_of_core_release_refuses_other_models_and_bad_sources(narrow, tmp_path, dp_policy):
    from tabsynth.run.out_of_core import release_out_of_core

    with pytest.raises(InputError, match="cannot fit out of core") as caught:
        release_out_of_core(small_release(narrow, tmp_path, dp_policy, model="copula"))
    assert len(caught.value.args) == 1
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 but not really")
    with pytest.raises(InputError, match="broken.parquet") as caught:
        release_out_of_core(small_release(broken, tmp_path, dp_policy))
    assert len(caught.value.args) == 1 and "\n" not in str(caught.value)
    assert not (tmp_path / "rel").exists()


def test_streamed_keys_stay_unique_across_chunks():
    from tabsynth.sample.identifiers import add_identifiers, key_bijections
    from tabsynth.table.schema import Column, Schema

    schema = Schema((Column("code", "id", "object"), Column("n", "id", "int64")))
    rng = np.random.default_rng(0)
    keys = key_bijections(schema, rng)
    chunks = [add_identifiers(pd.DataFrame(index=range(500)), schema, 500, rng, keys=keys, offset=offset)
              for offset in (0, 500, 1000)]
    both_columns = pd.concat(chunks)
    assert both_columns["code"].is_unique and both_columns["n"].is_unique
    assert sorted(both_columns["n"]) == list(range(1, 1501))
    assert both_columns["code"].str.fullmatch(r"[0-9A-F]{12}").all()


def test_streamed_parquet_types_a_column_empty_in_the_first_chunk_as_text(tmp_path):
    from tabsynth.run.out_of_core import write_synthetic

    chunks = [pd.DataFrame({"ward": [None, None], "n": [1.0, 2.0]}),
              pd.DataFrame({"ward": ["icu", None], "n": [3.0, 4.0]})]
    written = write_synthetic(lambda count, offset: chunks[offset // 2], 4, tmp_path / "s.parquet", chunk_rows=2)
    back = pd.read_parquet(tmp_path / "s.parquet")
    assert written == 4 and back["ward"].tolist() == [None, None, "icu", None] and back["n"].tolist() == [1, 2, 3, 4]


def test_grouping_ids_summed_per_column_give_the_same_counts(both):  # noqa: F811 (a fixture)
    frame, duck, schema = both
    codecs = codecs_for(frame, schema, "uniform")
    names = [c.name for c in codecs]
    cliques = [(), (names[0],), (names[1], names[0]), (names[2], names[3], names[4])]
    per_column = dataclasses.replace(sql.DUCKDB, grouping_takes_one_column=True)
    got = sql.code_counts_via(duck.query, duck.source, codecs, cliques, per_column, types=duck.types)
    expected = frame.code_counts(codecs, cliques)
    assert all(np.array_equal(got[c], expected[c]) for c in cliques)


# ---- spill folders ------------------------------------------------------------------------------------------


def spill_folder(connection) -> Path:
    return Path(connection.execute("SELECT current_setting('temp_directory')").fetchone()[0])


def test_each_session_spills_to_a_private_folder_of_its_own_removed_on_close(parquet):  # noqa: F811 (a fixture)
    from tabsynth.scale.duckdb_counts import DuckDBSession

    with DuckDBSession() as first, DuckDBSession() as second:
        folders = [spill_folder(session.connection) for session in (first, second)]
        assert folders[0] != folders[1] and folders == [first.spill_folder, second.spill_folder]
        for folder in folders:
            assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert folder.name.startswith("tabsynth-duckdb-") and folder.parent == Path(tempfile.gettempdir())
    assert not any(folder.exists() for folder in folders)
    with DuckDBCounts(parquet) as counts:  # counts given no connection own a session
        own = spill_folder(counts.connection)
        assert own.is_dir() and counts.category_counts("grade")
    assert not own.exists()
    with pytest.raises(InputError):
        DuckDBCounts(parquet.parent / "nowhere.parquet")  # a failed start closes its session


class RecordedSession:
    """Wraps the release's DuckDBSession class: keeps the spill folder each session makes (still a real one)."""

    def __init__(self, monkeypatch):
        from tabsynth.run import out_of_core as release

        self.folders, made = [], release.DuckDBSession

        def make(*args, **kwargs):
            session = made(*args, **kwargs)
            assert stat.S_IMODE(session.spill_folder.stat().st_mode) == 0o700
            self.folders.append(session.spill_folder)
            return session

        monkeypatch.setattr(release, "DuckDBSession", make)


def test_a_release_removes_its_spill_folder_after_success_and_after_an_error(narrow, tmp_path, dp_policy,
                                                                               monkeypatch):
    from tabsynth.run.out_of_core import release_out_of_core

    recorded = RecordedSession(monkeypatch)
    assert release_out_of_core(small_release(narrow, tmp_path, dp_policy)).verdict.passed
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 but not really")
    with pytest.raises(InputError, match="broken.parquet"):
        release_out_of_core(small_release(broken, tmp_path, dp_policy, out=tmp_path / "rel2"))
    assert len(recorded.folders) == 2 and not any(folder.exists() for folder in recorded.folders)


# ---- Parquet folders ----------------------------------------------------------------------------------------
