"""Choosing whole-frame REUSE settings: the fastest value that keeps the goal, and why the
others do not."""

from __future__ import annotations

import pytest

from seg_accel_ros.evaluation.tuning import (
    FRAME_REUSE,
    Candidate,
    TuneGoal,
    candidates_from,
    choose,
    tuned_settings,
)

CURVE = [Candidate(1, 1.9, 99.1, 84.9), Candidate(2, 2.7, 98.6, 83.9),
         Candidate(3, 3.4, 98.2, 82.9), Candidate(5, 5.0, 96.5, 80.0)]


def test_the_fastest_value_keeping_the_agreement_is_chosen():
    assert choose(CURVE, TuneGoal(min_agreement=98.0, max_miou_drop=100.0), None).value == 3
    assert choose(CURVE, TuneGoal(min_agreement=96.0), None).value == 5
    assert choose(CURVE, TuneGoal(min_agreement=99.0), None).value == 1


def test_with_labels_the_miou_drop_below_dense_counts_too():
    goal = TuneGoal(min_agreement=97.0, max_miou_drop=1.0)
    assert choose(CURVE, goal, dense_miou=85.68).value == 1  # 2 loses 1.78
    assert choose(CURVE, goal, dense_miou=84.8).value == 2  # 2 loses 0.9
    assert choose(CURVE, goal, dense_miou=None).value == 3  # no labels: agreement only


def test_when_nothing_keeps_the_goal_there_is_no_choice_and_each_value_says_why():
    goal = TuneGoal(min_agreement=99.5, max_miou_drop=0.5)
    assert choose(CURVE, goal, dense_miou=85.68) is None
    assert CURVE[0].shortfalls(goal, 85.68) == ["agreement 99.10% < 99.5%",
                                                "mIoU 0.78 below dense > 0.5"]
    unmeasured = Candidate(4, None, None, None)
    assert unmeasured.shortfalls(goal, 85.68) == [
        "speed not measured", "agreement n/a < 99.5%", "mIoU n/a below dense > 0.5"]


def test_the_goal_in_words_names_the_miou_only_where_the_input_has_labels():
    goal = TuneGoal(97.0, 1.0)
    assert goal.describe(labelled=False) == "pixel agreement with dense at least 97%"
    assert goal.describe(labelled=True).endswith("mIoU at most 1 below dense")


@pytest.mark.parametrize("kwargs", [{"min_agreement": 101.0}, {"min_agreement": -1.0},
                                    {"max_miou_drop": -0.1}, {"max_miou_drop": float("nan")}])
def test_a_goal_out_of_range_is_refused(kwargs):
    with pytest.raises(ValueError):
        TuneGoal(**kwargs)


def test_candidates_come_from_an_evaluation_reports_sweep_rows():
    rows = [{"value": 2, "throughput_ratio": 2.7, "pixel_agreement": 98.6, "miou": None,
             "speed_ratio": 9.0}]
    assert candidates_from(rows) == [Candidate(2, 2.7, 98.6, None)]


def test_the_tuned_settings_are_the_frame_reuse_family_with_the_chosen_value():
    base = {"model": "cgnet", "mode": "blocks", "full_fraction": 0.25, "motion_downscale": 2}
    settings = tuned_settings(base, "max_reuse_frames", 3)
    assert settings == {"model": "cgnet", "motion_downscale": 2, **FRAME_REUSE,
                        "max_reuse_frames": 3}
