import pytest

from keras_longformer.timing import Timing, time_calls


def test_time_calls_counts_warmup_and_repeats():
    calls = []
    timing = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6
    assert len(timing.times) == 4
    assert timing.first >= 0 and timing.median >= timing.best >= 0


def test_percentiles_interpolate():
    timing = Timing(first=0.0, times=(1.0, 2.0, 3.0, 4.0, 5.0))
    assert timing.percentile(50) == 3.0
    assert timing.percentile(90) == pytest.approx(4.6)
    assert timing.percentile(100) == 5.0


@pytest.mark.parametrize("name, value", [("repeats", 0), ("warmup", 0), ("repeats", True)])
def test_bad_counts_are_named(name, value):
    with pytest.raises(ValueError, match=f"Received: {name}={value!r}"):
        time_calls(lambda: None, **{name: value})
