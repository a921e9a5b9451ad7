"""Property tests: random small tables go through inference, the copula and back without breaking."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from tabsynth.models.base import create_model
from tabsynth.publish.report import render_report
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema
from tabsynth.testing import check_sample

text = st.sampled_from(["a", "b", "c", "ß", "", " x ", "None"])
frames = data_frames(
    columns=[
        column("ints", elements=st.integers(-10**6, 10**6)),
        column("floats", elements=st.one_of(st.just(float("nan")), st.floats(-1e6, 1e6)), dtype=float),
        column("text", elements=st.one_of(st.none(), text), dtype=object),
        column("flags", elements=st.booleans()),
    ],
    index=range_indexes(min_size=2, max_size=60),
)


# derandomize: CI runs the same examples every time; widen max_examples locally to hunt for new ones.
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(frames, st.integers(0, 2**32 - 1))
@example(pd.DataFrame({"ints": [0, 0], "floats": [np.nan, 1.768843e-256], "text": [None, None],
                       "flags": [False, False]}), 0)
@example(pd.DataFrame({"ints": [0, 0, 0], "floats": [-1.797693e308, 0.0, 1.797693e308], "text": ["a", None, "b"],
                       "flags": [True, False, True]}), 0)
@example(pd.DataFrame({"ints": [1, 2], "floats": [9.007199e15, 9.007199e15], "text": ["a", "a"],
                       "flags": [True, True]}), 0)
@pytest.mark.slow
def test_random_tables_round_trip(frame, seed):
    schema = infer_schema(frame)
    assert Schema.from_dict(schema.to_dict()) == schema
    data = conform(frame, schema)
    model = create_model("copula").fit(data, schema, rng=seed)
    sample = model.sample(50, rng=seed)
    check_sample(sample, data, schema, 50)
    render_report({}, data, sample, schema)  # plots must cope with any finite range
    for col in schema.modelled():
        if col.missing == 1.0:
            assert sample[col.name].isna().all()
        if col.kind == "numerical" and col.decimals == 0:
            values = sample[col.name].dropna().to_numpy(float)
            assert np.array_equal(values, np.round(values))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.datetimes(timezones=st.sampled_from([None])), min_size=2, max_size=40))
def test_datetime_text_round_trips(stamps):
    frame = pd.DataFrame({"when": [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]})
    schema = infer_schema(frame)
    if schema["when"].kind != "datetime":
        return  # e.g. every value identical and parsed as a constant categorical is acceptable
    data = conform(frame, schema)
    sample = create_model("copula").fit(data, schema, rng=0).sample(30, rng=1)
    assert sample["when"].dtype == data["when"].dtype
    assert sample["when"].min() >= data["when"].min() and sample["when"].max() <= data["when"].max()
