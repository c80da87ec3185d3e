"""The one window planner: offline plans, the streaming plan, and the rule that every frame is produced once."""

import pytest

from amodal.data.windows import StreamingPlan, plan_windows, window_starts
from amodal.errors import InputError


def test_window_starts_align_the_last_window_to_the_end():
    assert window_starts(8, 8) == [0]
    assert window_starts(5, 8) == [0]
    assert window_starts(17, 8) == [0, 8, 9]
    assert window_starts(20, 8, overlap=4) == [0, 4, 8, 12]
    assert window_starts(21, 8, overlap=4) == [0, 4, 8, 12, 13]


@pytest.mark.parametrize("window, overlap", [(1, 0), (4, 0), (8, 0), (8, 3), (16, 4), (5, 4)])
def test_plans_cover_every_frame_once(window, overlap):
    for total in range(1, 50):
        plan = plan_windows(total, window, overlap)
        assert plan[0].start == 0 and plan[-1].stop == total
        assert all(w.stop - w.start == min(window, total) for w in plan)
        produced = [f for w in plan for f in range(w.scored_from, w.stop)]
        assert produced == list(range(total))


@pytest.mark.parametrize("window, overlap", [(1, 0), (4, 0), (8, 3), (16, 4), (5, 4)])
def test_the_streaming_plan_runs_the_offline_windows(window, overlap):
    for total in range(1, 50):
        plan = StreamingPlan(window, overlap)
        starts, released = [], 0
        for seen in range(1, total + 1):
            start = plan.ready(seen)
            if start is not None:
                starts.append(start)
            until = plan.final_until(seen)
            assert until >= released  # frames once released stay released
            released = until
            # a released frame is never touched again by any window the offline plan runs
            later = [s for s in window_starts(total, window, overlap) if s not in starts]
            assert all(s >= until for s in later)
        final = plan.final_start(total)
        if final is not None:
            starts.append(final)
        assert sorted(set(starts)) == window_starts(total, window, overlap)


def test_bad_windows_name_the_flag():
    with pytest.raises(InputError, match="--window must be >= 1"):
        window_starts(10, 0)
    with pytest.raises(InputError, match="--overlap must be in"):
        plan_windows(10, 4, overlap=4)
    with pytest.raises(InputError, match="at least one frame"):
        plan_windows(0, 4)
