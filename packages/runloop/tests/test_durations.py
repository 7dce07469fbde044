"""Duration conversion: closed forms from the study and rejected contradictions."""

import pytest
from runloop.durations import steps_to_epochs, steps_to_examples, to_steps

I1K = 1_281_167


def test_study_800_epochs_is_250k_steps():
    # "250,000 steps at batch size 4096 is equivalent to ... 800-epochs of ImageNet-1K"
    assert steps_to_epochs(250_000, batch_size=4096, dataset_size=I1K) == pytest.approx(799.27, abs=0.01)
    assert to_steps(epochs=800, batch_size=4096, dataset_size=I1K) == 250_228  # ceil(800 * 1281167 / 4096)


def test_units_agree():
    assert to_steps(steps=100, batch_size=64) == 100
    assert to_steps(examples=6400, batch_size=64) == 100
    assert to_steps(examples=6401, batch_size=64) == 101  # a last partial batch is a full step
    assert to_steps(steps=100, examples=6400, epochs=2, dataset_size=3200, batch_size=64) == 100
    assert steps_to_examples(100, batch_size=64) == 6400


def test_contradictions_and_bad_input():
    with pytest.raises(ValueError, match="contradictory durations.*steps -> 100 steps, examples -> 200 steps"):
        to_steps(steps=100, examples=12_800, batch_size=64)
    with pytest.raises(ValueError, match="needs dataset_size"):
        to_steps(epochs=1, batch_size=64)
    with pytest.raises(ValueError, match="no duration given"):
        to_steps(batch_size=64)
    with pytest.raises(ValueError, match="batch_size=0"):
        to_steps(steps=1, batch_size=0)
    with pytest.raises(ValueError, match="epochs=-1"):
        to_steps(epochs=-1, batch_size=4, dataset_size=10)
