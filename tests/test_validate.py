import numpy as np
import pandas as pd
import pytest

from tabsynth.infer import infer_schema
from tabsynth.validate.fidelity import column_distances, tvd
from tabsynth.validate.risk import copy_rate, exact_copies


def test_tvd_known_values():
    assert tvd(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 0
    assert tvd(np.array([0, 0]), np.array([1, 1])) == pytest.approx(1)
    assert tvd(np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5)
    assert tvd(np.array([3, 3, 7]), np.array([5])) == pytest.approx(1)


def test_column_distances_see_a_shifted_column():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(list("abc"), 2000)})
    schema = infer_schema(real)
    same = column_distances(real, real.sample(frac=1, random_state=1), schema)
    shifted = column_distances(real, real.assign(x=real["x"] + 3), schema)
    values = lambda results: {m.name: m.value for m in results}  # noqa: E731
    assert values(same)["tvd:x"] == 0 and values(same)["mean_pair_tvd"] == 0
    assert values(shifted)["tvd:x"] > 0.5 and values(shifted)["tvd:c"] == 0


def test_exact_copies_against_the_holdout_baseline():
    train = pd.DataFrame({"a": [10, 20, 30, 45], "b": ["x", None, "z", "w"]})
    holdout = pd.DataFrame({"a": [10, 90], "b": ["x", "y"]})
    synthetic = pd.DataFrame({"a": [20, 50, 30, 30], "b": [None, "q", "z", "no"]})
    assert copy_rate(train, synthetic, ["a", "b"]) == 0.5  # missing equals missing
    results = {m.name: m.value for m in exact_copies(train, holdout, synthetic, infer_schema(train))}
    assert results["holdout_copy_rate"] == 0.5 and results["exact_copy_excess"] == 0.0


def test_wide_tables_use_a_bounded_number_of_pairs():
    from tabsynth.validate.fidelity import MAX_PAIRS, column_pairs

    pairs, total = column_pairs([f"c{i}" for i in range(100)])
    assert total == 4950 and len(pairs) == MAX_PAIRS == len(set(pairs))
    assert column_pairs(["a", "b", "c"]) == ([("a", "b"), ("a", "c"), ("b", "c")], 3)
