import pytest

from idc_engine.train.schedule import lr_factor


def test_warmup_then_cosine_decay_to_the_floor():
    factors = [lr_factor(s, 100, 10, "cosine", 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert lr_factor(100, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 100, 10, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(80, 100, 10, "constant", 0.1) == 1.0


def test_a_time_budget_drives_the_decay():
    # Half the budget spent at step 20 of a nominal 1000: the schedule is half way, not 2% of the way.
    assert lr_factor(20, 1000, 10, "linear", 0.0, time_fraction=0.5) == pytest.approx(0.5)
    assert lr_factor(20, 1000, 10, "linear", 0.0, time_fraction=1.2) == pytest.approx(0.0)
