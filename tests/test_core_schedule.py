import pytest

from vtome.schedule import layer_r, tokens_to_merge


def test_decreasing_matches_paper():
    assert layer_r(150, "decreasing", 12, 1568) == [300, 272, 245, 218, 190, 163, 136, 109, 81, 54, 27, 0]


def test_increasing_is_linear_and_truncated():
    # 0 + (300 / 11) * i, truncated
    assert layer_r(150, "increasing", 12, 1568) == [0, 27, 54, 81, 109, 136, 163, 190, 218, 245, 272, 300]


def test_constant_and_fraction():
    assert layer_r(300, "constant", 12, 3136) == [300] * 12
    assert tokens_to_merge(0.1, 3136) == 313
    assert layer_r(0.1, "constant", 3, 3136) == [313] * 3
    assert layer_r(0.5, "decreasing", 3, 196) == [196, 98, 0]


def test_list_schedule_is_padded():
    assert layer_r(0, [5, 4], 4, 100) == [5, 4, 0, 0]


@pytest.mark.parametrize(
    "r, schedule, message",
    [
        (-1, "constant", ">= 0"),
        (0.6, "constant", "(0, 0.5]"),
        (True, "constant", "must be an int"),
        ("3", "constant", "must be an int"),
        (3, "linear", "unknown schedule"),
        (3, [1, -2], "non-negative ints"),
        (3, [1, 2, 3, 4, 5], "5 layers but the model has 4"),
    ],
)
def test_bad_values_raise(r, schedule, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        layer_r(r, schedule, 4, 100)
