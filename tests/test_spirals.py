"""The latent ODE's data: irregularly sampled spirals generated in code, and the user's own series."""
from __future__ import annotations

import io

import numpy as np
import pytest

from odeviz.data.files import MAX_FILE_BYTES
from odeviz.data.spirals import WINDOW, parse_series, read_series, spiral_templates, spirals


def test_spirals_are_irregular_windows_with_a_held_out_continuation():
    data = spirals(observations=30, count=200, seed=3)
    assert len(data) == 200 and data.dim == 2
    assert data.obs_t.shape == (200, 30) and data.obs_x.shape == (200, 30, 2) and (data.obs_count == 30).all()
    steps = np.diff(data.obs_t, axis=1)
    assert (steps > 0).all(), "sorted, distinct times"
    assert np.unique(np.round(steps, 6)).size > 5, "gaps differ: irregular sampling"
    assert (data.obs_t[:, 0] >= 0).all() and (data.obs_t[:, -1] <= data.observed_until[:, None]).all()
    assert (data.future_t > data.observed_until[:, None]).all(), "scored only after the observed window"
    assert data.future_t.max() <= data.curve_t.max()
    # Observations are the true curve plus noise of std 0.3; the held-out values are the curve itself.
    rows = np.arange(200)[:, None]
    truth = data.curve_x[rows, np.searchsorted(data.curve_t[0], data.obs_t)]
    noise = (data.obs_x - truth).ravel()
    assert abs(noise.std() - 0.3) < 0.02 and abs(noise.mean()) < 0.02
    np.testing.assert_allclose(data.future_x, data.curve_x[rows, np.searchsorted(data.curve_t[0], data.future_t)])
    assert data.curve_t.shape[1] == 2 * WINDOW


def test_half_the_spirals_turn_each_way_and_the_seed_fixes_everything():
    data = spirals(50, count=400, seed=0)
    _, clockwise, counter = spiral_templates()
    # Which template a series is on: the counter-clockwise spiral lives right of x = 0, the other left.
    counter_share = (data.curve_x[:, :, 0].mean(1) > 0).mean()
    assert 0.4 < counter_share < 0.6
    again = spirals(50, count=400, seed=0)
    np.testing.assert_array_equal(data.obs_x, again.obs_x)
    assert not np.array_equal(data.obs_x, spirals(50, count=400, seed=1).obs_x)


def test_split_holds_out_a_fifth_and_observation_counts_are_bounded():
    data = spirals(100, count=100)
    train, test = data.split(seed=0)
    assert len(train) == 80 and len(test) == 20
    assert not set(map(tuple, train.obs_x[:, 0])) & set(map(tuple, test.obs_x[:, 0]))
    for n in (9, 101):
        with pytest.raises(ValueError, match="from 10 to 100"):
            spirals(n)


def _csv(tmp_path, text, name="mine.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_of_the_users_series_is_read_with_its_first_half_observed(tmp_path):
    rows = ["series,t,x1,x2"] + [f"{s},{t * 0.37 + (s == 'b') * 10},{np.sin(t)},{np.cos(t)}" for s in ("a", "b") for t in range(9)]
    data = read_series(_csv(tmp_path, "\n".join(rows)))
    assert len(data) == 2 and data.dim == 2 and list(data.obs_count) == [5, 5] and list(data.future_count) == [4, 4]
    np.testing.assert_allclose(data.obs_t[0], 0.37 * np.arange(5))  # each series' clock starts at 0
    np.testing.assert_allclose(data.future_x[1, :, 0], np.sin(np.arange(5, 9)))
    np.testing.assert_allclose(data.observed_until, [0.37 * 4] * 2)


def test_an_npz_of_ragged_series_is_padded_with_counts(tmp_path):
    path = tmp_path / "mine.npz"
    labels = np.array([0] * 6 + [1] * 9)
    t = np.concatenate([np.arange(6), np.arange(9) * 0.5])
    np.savez(path, series=labels, t=t, x=np.arange(15.0))
    data = read_series(path)
    assert data.dim == 1 and list(data.obs_count) == [3, 5] and list(data.curve_count) == [6, 9]
    t0, x0 = data.observations(0)
    np.testing.assert_allclose(t0, [0, 1, 2])
    np.testing.assert_allclose(x0[:, 0], [0, 1, 2])


@pytest.mark.parametrize(
    "text, reason",
    [
        ("s,t,x\n1,0,1\n1,2,1\n1,1,1\n1,3,1\n2,0,1\n2,1,1\n2,2,1\n2,3,1", "not sorted"),
        ("s,t,x\n1,0,1\n1,1,1\n1,1,1\n1,3,1\n2,0,1\n2,1,1\n2,2,1\n2,3,1", "time 1 twice"),
        ("s,t,x\n1,0,1\n1,1,nan\n1,2,1\n1,3,1\n2,0,1\n2,1,1\n2,2,1\n2,3,1", "NaN"),
        ("x\n1\n2\n3", "1 column"),
        ("s,t,x\n1,0,1\n1,1,1\n1,2,1\n2,0,1\n2,1,1\n2,2,1\n2,3,1", "series '1' has 3 points"),
        ("s,t,x\n1,0,1\n1,1,1\n1,2,1\n1,3,1", "at least 2"),
        ("s,t,x\n1,0,one\n1,1,1", "non-numeric"),
    ],
)
def test_malformed_files_are_refused_naming_the_file_and_the_reason(tmp_path, text, reason):
    with pytest.raises(ValueError, match=reason) as refused:
        read_series(_csv(tmp_path, text))
    assert "'mine.csv'" in str(refused.value)


def test_oversized_unknown_and_incomplete_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'big.csv' is 101 MB; the limit is 100 MB"):
        parse_series(b"0" * (MAX_FILE_BYTES + 2**20), "big.csv")
    big = tmp_path / "huge.csv"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ValueError, match="'huge.csv'.*limit"):
        read_series(big)
    with pytest.raises(ValueError, match=r"'a.txt' must be a .csv or .npz"):
        parse_series(b"1,2,3", "a.txt")
    buffer = io.BytesIO()
    np.savez(buffer, t=np.arange(4.0))
    with pytest.raises(ValueError, match="lacks the arrays series, x"):
        parse_series(buffer.getvalue(), "partial.npz")
    with pytest.raises(ValueError, match="not a readable .npz"):
        parse_series(b"not a zip", "broken.npz")
    with pytest.raises(ValueError, match="does not exist"):
        read_series(tmp_path / "nowhere.csv")
