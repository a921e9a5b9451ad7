"""The graphical-model engine: junction trees, mirror descent, exact marginals, sampling, state."""

import json
from itertools import combinations

import numpy as np
import pytest

from tabsynth.errors import ModelError
from tabsynth.models.pgm import (
    Domain,
    GraphicalModel,
    LinearMeasurement,
    build_tree,
    estimate,
    junction_tree_size,
    measurement_loss,
    minimum_variance_total,
)
from tabsynth.models.pgm.domain import sum_out
from tabsynth.models.pgm.junction import calibrate, calibrate_scaled

DOMAIN = Domain(("A", "B", "C", "D", "E"), (2, 3, 4, 2, 3))


def marginal_of(joint: np.ndarray, domain: Domain, attrs) -> np.ndarray:
    """Brute force: sum the full joint (axes in domain order) down to `attrs`, axes in the order given."""
    kept = domain.canonical(attrs)
    return domain.reorder(domain.sum_to(joint, domain.names, kept), kept, tuple(attrs))


def measure(joint: np.ndarray, domain: Domain, cliques, sigma: float = 1.0) -> list[LinearMeasurement]:
    return [LinearMeasurement(tuple(c), marginal_of(joint, domain, c).ravel(), sigma) for c in cliques]


def model_joint(model: GraphicalModel) -> np.ndarray:
    """The model's full table of counts straight from its potentials, without any message passing."""
    log_joint = np.zeros(model.domain.shape())
    for clique, theta in zip(model.cliques, model.potentials, strict=True):
        log_joint = log_joint + model.domain.expand(theta, clique, model.domain.names)
    joint = np.exp(log_joint - log_joint.max())
    return model.total * joint / joint.sum()


def random_model(domain: Domain, cliques, seed: int, total: float = 500.0) -> GraphicalModel:
    rng = np.random.default_rng(seed)
    tree = build_tree(domain, cliques)
    return GraphicalModel(domain, tree, [2 * rng.normal(size=domain.shape(c)) for c in tree.cliques], total)


def test_domain_sizes_and_projection():
    assert DOMAIN.size() == 144 and DOMAIN.size(("C", "A")) == 8 and DOMAIN.size(()) == 1
    assert DOMAIN.shape(("E", "B")) == (3, 3)
    assert DOMAIN.project(("D", "A")) == Domain(("D", "A"), (2, 2))
    assert DOMAIN.canonical(("E", "A", "C")) == ("A", "C", "E")
    assert Domain(("x",), (np.int64(3),)).sizes == (3,) and type(Domain(("x",), (np.int64(3),)).sizes[0]) is int
    with pytest.raises(ModelError, match="'Z'"):
        DOMAIN.size(("Z",))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 1, 5), (3, 20, 2, 30), (2, 3, 4, 5, 6)])
def test_sum_out_equals_numpy_sum_over_every_set_of_axes(shape):
    values = np.random.default_rng(0).random(shape)
    for k in range(len(shape) + 1):
        for axes in combinations(range(len(shape)), k):
            np.testing.assert_allclose(sum_out(values, axes), values.sum(axis=axes), rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_junction_tree_covers_cliques_and_has_running_intersection(seed):
    rng = np.random.default_rng(seed)
    domain = Domain(tuple("ABCDEFGHIJ"), tuple(int(s) for s in rng.integers(2, 6, 10)))
    measured = [tuple(rng.choice(domain.names, size=rng.integers(1, 4), replace=False)) for _ in range(7)]
    tree = build_tree(domain, measured)
    cliques = [set(c) for c in tree.cliques]
    assert all(any(set(m) <= c for c in cliques) for m in measured)
    assert set().union(*cliques) == set(domain.names)
    assert not any(a < b for a in cliques for b in cliques)  # maximal
    assert len(tree.edges) == len(cliques) - 1 and {child for _, child in tree.edges} == set(range(1, len(cliques)))
    for name in domain.names:  # the cliques holding an attribute form a connected subtree
        holding = {i for i, c in enumerate(cliques) if name in c}
        inner_edges = [(p, c) for p, c in tree.edges if p in holding and c in holding]
        assert len(inner_edges) == len(holding) - 1
    assert junction_tree_size(domain, measured) == sum(domain.size(c) for c in tree.cliques)


def test_a_cycle_is_triangulated_with_one_chord():
    domain = Domain(("A", "B", "C", "D"), (2, 2, 2, 2))
    tree = build_tree(domain, [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A")])
    assert len(tree.cliques) == 2 and all(len(c) == 3 for c in tree.cliques)
    assert junction_tree_size(domain, [("A", "B"), ("C", "D")]) == 8


@pytest.mark.parametrize("cliques", [
    [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")],
    [("A", "B", "C"), ("C", "D"), ("D", "E", "A")],
    [("A", "E"), ("B", "D"), ("C",)],
])
def test_marginal_across_cliques_equals_brute_force(cliques):
    model = random_model(DOMAIN, cliques, seed=len(cliques))
    assert len(model.cliques) >= 3
    joint = model_joint(model)
    for k in (0, 1, 2, 3, 5):
        for attrs in combinations(reversed(DOMAIN.names), k):
            got = model.marginal(attrs)
            assert got.shape == DOMAIN.shape(attrs)
            np.testing.assert_allclose(got, marginal_of(joint, DOMAIN, attrs), rtol=1e-9, atol=1e-9)


def test_a_marginal_across_a_subnormal_separator_stays_finite():
    """B = 1 has probability ~1e-321 (subnormal, so 1 / p(B) overflows): the marginal over A and C, which no
    clique holds, is that of B = 0, not inf or NaN (AIM refused such scores mid-fit)."""
    domain = Domain(("A", "B", "C"), (2, 2, 2))
    tree = build_tree(domain, [("A", "B"), ("B", "C")])
    given_b0 = np.array([0.0, 1.0])
    potentials = [np.array([[0.0, -740.0], [0.0, -740.0]]), np.array([given_b0, [2.0, 0.0]])]
    model = GraphicalModel(domain, tree, potentials, 1000.0)
    assert 0 < model.marginal(("B",))[1] < 1e-300
    expected = 1000.0 * np.outer([0.5, 0.5], np.exp(given_b0) / np.exp(given_b0).sum())
    np.testing.assert_allclose(model.marginal(("A", "C")), expected, rtol=1e-9)


def test_scaled_calibration_agrees_with_log_space_and_reports_underflow():
    model = random_model(DOMAIN, [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")], seed=10)
    scaled = calibrate_scaled(model.tree, [np.exp(theta - theta.max()) for theta in model.potentials])
    for table, probabilities in zip(scaled, model.probabilities, strict=True):
        np.testing.assert_allclose(table / table.sum(), probabilities, rtol=1e-10)
    # the two cliques favour opposite values of B by e^800: products of scaled tables underflow
    domain = Domain(("A", "B", "C"), (2, 2, 2))
    tree = build_tree(domain, [("A", "B"), ("B", "C")])
    potentials = [np.array([[0.0, -800.0], [0.0, -800.0]]), np.array([[-800.0, -800.0], [0.0, 0.0]])]
    assert calibrate_scaled(tree, [np.exp(p - p.max()) for p in potentials]) is None
    log_joint = potentials[0][:, :, None] + potentials[1][None, :, :]
    joint = np.exp(log_joint - log_joint.max())
    np.testing.assert_allclose(calibrate(tree, potentials)[0], joint.sum(axis=2) / joint.sum(), rtol=1e-9)


def test_estimate_recovers_a_chain_and_its_conditional_independence():
    rng = np.random.default_rng(3)
    domain = Domain(("A", "B", "C"), (3, 4, 3))
    p_ab = rng.dirichlet(np.ones(12)).reshape(3, 4)
    p_c_given_b = rng.dirichlet(np.ones(3), size=4)
    joint = 1000 * p_ab[:, :, None] * p_c_given_b[None, :, :]
    model = estimate(domain, measure(joint, domain, [("B", "A"), ("B", "C")]), iterations=1000)
    assert model.total == pytest.approx(1000)
    for attrs in [("B", "A"), ("C", "B"), ("A", "C")]:  # (A, C) is implied: A and C are independent given B
        np.testing.assert_allclose(model.marginal(attrs), marginal_of(joint, domain, attrs), atol=0.01)
    wider = estimate(domain, measure(joint, domain, [("B", "A"), ("B", "C")]), iterations=1000, cliques=[("C", "A")])
    assert wider.cliques == [("A", "B", "C")]  # an unmeasured clique widens the model but adds no information
    np.testing.assert_allclose(wider.marginal(("A", "C")), model.marginal(("A", "C")), atol=1e-6)


def test_estimate_matches_consistent_marginals_around_a_cycle():
    joint = 2000 * np.random.default_rng(4).dirichlet(np.full(DOMAIN.size(), 0.5)).reshape(DOMAIN.shape())
    cliques = [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A"), ("E",)]
    model = estimate(DOMAIN, measure(joint, DOMAIN, cliques), iterations=1000)
    for clique in cliques:
        np.testing.assert_allclose(model.marginal(clique), marginal_of(joint, DOMAIN, clique), atol=0.05)
    np.testing.assert_allclose(model.marginal(("A", "E")).sum(axis=1), marginal_of(joint, DOMAIN, ("A",)), atol=0.05)


def test_without_measurements_the_model_is_uniform_over_the_total():
    model = estimate(DOMAIN, [], total=72.0)
    np.testing.assert_allclose(model.marginal(("B", "D")), np.full((3, 2), 12.0))


def test_total_is_the_inverse_variance_weighted_mean_of_the_sums():
    precise = LinearMeasurement(("A",), np.array([60.0, 40.0]), 1.0)  # variance of its sum 2
    noisy = LinearMeasurement(("B",), np.array([70.0, 70.0, 60.0]), 2.0)  # variance 12
    assert minimum_variance_total([precise, noisy]) == pytest.approx((100 / 2 + 200 / 12) / (1 / 2 + 1 / 12))
    assert minimum_variance_total([LinearMeasurement(("A",), np.array([-5.0, 2.0]), 1.0)]) == 1.0


def test_warm_start_reproduces_the_previous_model_and_continues():
    joint = 1000 * np.random.default_rng(5).dirichlet(np.ones(DOMAIN.size())).reshape(DOMAIN.shape())
    measurements = measure(joint, DOMAIN, [("A", "B"), ("B", "C"), ("D",)], sigma=2.0)
    first = estimate(DOMAIN, measurements, iterations=15)
    more = measurements + measure(joint, DOMAIN, [("C", "D")], sigma=2.0)
    unchanged = estimate(DOMAIN, more, iterations=0, warm_start=first)
    for attrs in [("A", "B"), ("A", "C"), ("D", "E")]:
        np.testing.assert_allclose(unchanged.marginal(attrs), first.marginal(attrs), rtol=1e-9)
    continued = estimate(DOMAIN, measurements, iterations=15, warm_start=first)
    assert measurement_loss(continued, measurements) < measurement_loss(first, measurements)


def test_samples_follow_the_model_with_rounding():
    model = random_model(DOMAIN, [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")], seed=6, total=1.0)
    n = 20_000
    rows = model.sample(n, np.random.default_rng(7))
    assert rows.shape == (n, len(DOMAIN)) and rows.dtype == np.int64
    assert (rows >= 0).all() and (rows < np.array(DOMAIN.sizes)).all()
    root = DOMAIN.canonical(model.cliques[0])
    # the root clique is allocated by rounding: every cell is within one row of its expected count
    assert np.abs(counts(rows, root) - n * model.marginal(root)).max() < 1 + 1e-9
    # i.i.d. draws would have standard error <= 0.5 / sqrt(n) per cell; rounding only lowers it: 4 of them
    for attrs in combinations(DOMAIN.names, 2):
        assert np.abs(counts(rows, attrs) / n - model.marginal(attrs)).max() < 4 * 0.5 / np.sqrt(n)



def test_each_child_clique_is_allocated_within_one_row_of_its_conditional_share():
    """Controlled rounding: the rows that drew separator value s get, for each value x of the child's new
    attributes, n_s · p(x | s) rows up to rounding (< 1 row). i.i.d. draws miss by ~sqrt(n_s · p) rows."""
    model = random_model(DOMAIN, [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")], seed=12, total=1.0)
    rows = model.sample(30_000, np.random.default_rng(13))
    checked = 0
    for (_, child), separator in zip(model.tree.edges, model.tree.separators, strict=True):
        clique = model.tree.cliques[child]
        new = tuple(a for a in clique if a not in separator)
        joint = model.marginal(separator + new)
        conditional = joint / joint.sum(axis=tuple(range(len(separator), joint.ndim)), keepdims=True)
        drawn = counts(rows, separator + new)
        given = drawn.sum(axis=tuple(range(len(separator), drawn.ndim)), keepdims=True)
        assert np.abs(drawn - given * conditional).max() < 1 + 1e-9
        checked += 1
    assert checked == len(model.tree.cliques) - 1 >= 2

def counts(rows: np.ndarray, attrs) -> np.ndarray:
    table = np.zeros(DOMAIN.shape(attrs))
    np.add.at(table, tuple(rows[:, DOMAIN.index(a)] for a in attrs), 1)
    return table


def test_sampling_no_rows_gives_an_empty_table():
    model = random_model(DOMAIN, [("A", "B")], seed=11)
    assert model.sample(0, np.random.default_rng(0)).shape == (0, len(DOMAIN))
    with pytest.raises(ModelError):
        model.sample(-1, np.random.default_rng(0))


def test_state_round_trip_gives_identical_marginals_and_samples():
    model = random_model(DOMAIN, [("A", "B"), ("B", "C"), ("C", "D"), ("B", "E")], seed=8)
    meta, arrays = model.state()
    restored = GraphicalModel.from_state(json.loads(json.dumps(meta)), {k: v.copy() for k, v in arrays.items()})
    assert restored.cliques == model.cliques and restored.total == model.total
    for attrs in [("A", "E"), ("D", "B", "A"), ("C",)]:
        np.testing.assert_array_equal(restored.marginal(attrs), model.marginal(attrs))
    np.testing.assert_array_equal(restored.sample(500, np.random.default_rng(9)),
                                  model.sample(500, np.random.default_rng(9)))


def test_bad_measurements_are_refused_with_every_problem():
    wrong_size = LinearMeasurement(("A", "B"), np.ones(5), 1.0)
    unknown = LinearMeasurement(("Z",), np.ones(2), 1.0)
    no_noise = LinearMeasurement(("A",), np.ones(2), 0.0)
    with pytest.raises(ModelError) as caught:
        estimate(DOMAIN, [wrong_size, unknown, no_noise])
    assert len(caught.value.problems) == 3


def test_mirror_descent_converges_in_few_steps_on_a_large_table():
    """The step size adapts (doubles, then backtracks): 80 steps get within 0.1 % of the optimum's loss on
    noisy marginals of a 50,000-row table, where a step size that only creeps up would still be far off."""
    domain = Domain(("A", "B", "C"), (40, 6, 30))
    joint = 50_000 * np.random.default_rng(7).dirichlet(np.full(domain.size(), 0.3)).reshape(domain.shape())
    rng = np.random.default_rng(8)
    measurements = [LinearMeasurement(m.clique, m.noisy + rng.normal(0, 20, m.noisy.size), 20.0)
                    for m in measure(joint, domain, [("A", "B"), ("B", "C"), ("A",), ("C",)])]
    optimum = measurement_loss(estimate(domain, measurements, iterations=2000), measurements)
    quick = measurement_loss(estimate(domain, measurements, iterations=80), measurements)
    assert optimum <= quick <= 1.001 * optimum


def test_momentum_gets_close_to_the_optimum_in_a_hundred_steps_on_a_cycle():
    """Nesterov momentum with restart: on sparse noisy marginals around a cycle (a clique tree of 3- and
    2-way cliques), 100 steps come within 2x of the optimum's loss; plain mirror descent (doubling step,
    backtracking) is still above 5x there and needs 200-250 steps to get within 2x."""
    domain = Domain(("A", "B", "C", "D", "E"), (30, 8, 20, 6, 25))
    joint = 50_000 * np.random.default_rng(7).dirichlet(np.full(domain.size(), 0.05)).reshape(domain.shape())
    rng = np.random.default_rng(8)
    cliques = [("A", "B", "C"), ("B", "C", "D"), ("D", "E"), ("A", "E"), ("A",), ("C",)]
    measurements = [LinearMeasurement(m.clique, m.noisy + rng.normal(0, 5, m.noisy.size), 5.0)
                    for m in measure(joint, domain, cliques)]
    optimum = measurement_loss(estimate(domain, measurements, iterations=2000), measurements)
    quick = measurement_loss(estimate(domain, measurements, iterations=100), measurements)
    assert optimum <= quick <= 2 * optimum
