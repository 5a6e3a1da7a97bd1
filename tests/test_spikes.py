"""Streaming spike detectors: sparse noise, bursts, seasonality, robustness, ordering, state, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from crisiswatch.cli import app
from crisiswatch.detectors.spikes import NegativeSpikeDetector, SpikeAlerter, VolumeSpikeDetector
from crisiswatch.series import SeriesFormatError, detect, parse_duration, read_series

MINUTE = 60.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % 86400  # a UTC midnight


def feed(detector: VolumeSpikeDetector, counts, start: float = T0, bucket: float = MINUTE):
    return [detector.update(start + i * bucket, float(c)) for i, c in enumerate(counts)]


@pytest.mark.parametrize("mean", [0.5, 1.0, 3.0])
def test_sparse_brand_noise_gives_no_alerts(mean: float) -> None:
    rng = np.random.default_rng(int(mean * 10))
    days = 3
    counts = rng.poisson(mean, size=days * 1440)
    alerter = SpikeAlerter(MINUTE)
    opened = sum(alerter.update(T0 + i * MINUTE, float(c))[1].kind == "opened" for i, c in enumerate(counts))
    spikes = sum(r.spike for r in feed(VolumeSpikeDetector(MINUTE), counts))
    assert spikes <= 1 and opened <= 1


def test_ten_x_burst_after_an_hour_is_flagged_and_not_before_warm_up() -> None:
    rng = np.random.default_rng(1)
    early = VolumeSpikeDetector(MINUTE)
    feed(early, rng.poisson(4.0, size=10))
    assert not early.update(T0 + 10 * MINUTE, 40.0).spike  # ten minutes of history: still warming up

    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, rng.poisson(4.0, size=60))
    burst = detector.update(T0 + 60 * MINUTE, 40.0)
    assert burst.spike
    assert 3.0 < burst.expected < 5.5
    assert burst.score > 12 and burst.p_value < 1e-12


def test_sustained_rise_of_a_sparse_brand_is_found_by_pooling() -> None:
    rng = np.random.default_rng(2)
    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, rng.poisson(1.0, size=120))
    rise = feed(detector, [10] * 15, start=T0 + 120 * MINUTE)
    assert not rise[0].spike  # ten mentions in one minute is not conclusive for this brand ...
    assert any(r.spike for r in rise)  # ... ten a minute for a quarter of an hour is
    flagged = next(r for r in rise if r.spike)
    assert flagged.observed > 10 and flagged.observed / flagged.expected > 3  # the pooled counts


def test_tiny_counts_do_not_fire_on_a_couple_of_mentions() -> None:
    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, [0] * 600)
    assert not detector.update(T0 + 600 * MINUTE, 3.0).spike  # 3 < min_count, however unlikely


def daily_cycle(minutes: np.ndarray, trough: float, peak: float) -> np.ndarray:
    """Smooth daily cycle with its trough at 04:00 UTC and peak at 16:00 UTC."""
    phase = np.cos(2 * np.pi * ((minutes / 1440.0) % 1.0 - 16 / 24))
    return trough + (peak - trough) * (1 + phase) / 2


def test_seasonal_peaks_are_learned_and_an_off_cycle_burst_is_flagged() -> None:
    bucket = 300.0
    per_day = 288
    days = 7
    rng = np.random.default_rng(3)
    minutes = np.arange(days * per_day) * 5.0
    counts = rng.poisson(daily_cycle(minutes, 20.0, 100.0))
    detector = VolumeSpikeDetector(bucket)
    results = feed(detector, counts, bucket=bucket)
    assert not any(r.spike for r in results[2 * per_day :])  # regular peaks after two days: no alerts
    day = T0 + days * 86400
    peak_expected = detector.expected(day + 16 * 3600)
    trough_expected = detector.expected(day + 4 * 3600)
    assert peak_expected / trough_expected > 3.0  # the cycle is in the forecast
    night = rng.poisson(daily_cycle(np.arange(48) * 5.0, 20.0, 100.0))  # 00:00 to 03:55, no gap
    assert not any(r.spike for r in feed(detector, night, start=day, bucket=bucket))
    burst = detector.update(day + 4 * 3600, 100.0)  # a peak-sized count at the trough hour
    assert burst.spike and burst.observed / burst.expected > 3 and not burst.after_gap


def test_baseline_is_not_inflated_by_its_own_spike() -> None:
    rng = np.random.default_rng(5)
    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, rng.poisson(5.0, size=120))
    t = T0 + 120 * MINUTE
    before = detector.expected(t)
    first = detector.update(t, 200.0)  # learning this count as is would lift the baseline by half
    feed(detector, rng.poisson(5.0, size=9), start=t + MINUTE)
    after = detector.expected(t + 10 * MINUTE)
    second = detector.update(t + 10 * MINUTE, 200.0)
    assert first.spike and second.spike
    assert after < before * 1.05


def test_burst_rank_is_pro_rata_while_the_history_is_shorter_than_the_horizon() -> None:
    rng = np.random.default_rng(41)
    detector = VolumeSpikeDetector(MINUTE)
    assert detector.bar_rank() == 1
    feed(detector, rng.poisson(5.0, size=120))
    first = detector.update(T0 + 120 * MINUTE, 200.0)
    feed(detector, rng.poisson(5.0, size=179), start=T0 + 121 * MINUTE)  # the burst closes after an hour
    smaller = detector.update(T0 + 300 * MINUTE, 100.0)
    feed(detector, rng.poisson(5.0, size=179), start=T0 + 301 * MINUTE)
    bigger = detector.update(T0 + 480 * MINUTE, 400.0)
    # a few hours of history allow one alert per record burst, not one per candidate
    assert first.spike and not smaller.spike and bigger.spike
    assert smaller.score >= detector.config.threshold  # a candidate, held back by the bar only
    detector.learned_seconds = detector.config.burst_horizon / 2
    assert detector.bar_rank() == detector.config.burst_rank // 2
    detector.learned_seconds = 2 * detector.config.burst_horizon
    assert detector.bar_rank() == detector.config.burst_rank


def test_out_of_order_bucket_is_scored_but_not_learned() -> None:
    rng = np.random.default_rng(7)
    counts = rng.poisson(5.0, size=180)
    detector, twin = VolumeSpikeDetector(MINUTE), VolumeSpikeDetector(MINUTE)
    feed(detector, counts)
    feed(twin, counts)
    state = json.dumps(detector.to_state())
    late = detector.update(T0 + 100 * MINUTE, 80.0)  # older than the last bucket
    assert late.spike and late.observed == 80.0
    assert json.dumps(detector.to_state()) == state
    repeat = detector.update(T0 + 179 * MINUTE, 5.0)  # the same bucket again
    assert not repeat.spike and json.dumps(detector.to_state()) == state
    tail = rng.poisson(5.0, size=30)
    assert feed(detector, tail, start=T0 + 180 * MINUTE) == feed(twin, tail, start=T0 + 180 * MINUTE)


def test_gap_after_a_restart_is_handled() -> None:
    rng = np.random.default_rng(9)
    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, rng.poisson(5.0, size=240))
    after_gap = feed(detector, rng.poisson(5.0, size=60), start=T0 + 240 * MINUTE + 6 * 3600)
    assert not any(r.spike for r in after_gap)
    assert after_gap[0].after_gap and not any(r.after_gap for r in after_gap[1:])
    assert 3.0 < after_gap[-1].expected < 7.0
    assert detector.update(T0 + 300 * MINUTE + 6 * 3600, 60.0).spike


def test_first_bucket_after_a_six_hour_gap_is_not_a_spike_by_itself() -> None:
    rng = np.random.default_rng(43)
    detector = VolumeSpikeDetector(MINUTE)
    feed(detector, rng.poisson(5.0, size=240))
    twin = VolumeSpikeDetector.from_state(json.loads(json.dumps(detector.to_state())))
    start = T0 + 240 * MINUTE + 6 * 3600
    first = detector.update(start, 60.0)  # e.g. a backlog flushed after an outage
    assert first.after_gap and not first.spike and first.score > 12
    assert detector.update(start + MINUTE, 60.0).spike  # the burst goes on: now it counts
    assert twin.update(start - 6 * 3600, 60.0).spike  # the same count without the gap is a spike


def test_a_run_of_impossible_zeros_is_a_collection_gap_not_data() -> None:
    rng = np.random.default_rng(47)
    detector = VolumeSpikeDetector(300.0)
    counts = rng.poisson(50.0, size=3 * 288)
    feed(detector, counts, bucket=300.0)
    before = detector.expected(T0 + 3 * 86400)
    outage = feed(detector, [0] * 26, start=T0 + 3 * 86400, bucket=300.0)  # 2 h 10 min collecting nothing
    assert all(r.gap and not r.spike for r in outage)
    resumed = feed(detector, rng.poisson(50.0, size=12), start=T0 + 3 * 86400 + 26 * 300, bucket=300.0)
    assert resumed[0].after_gap and not any(r.spike or r.gap for r in resumed)
    assert detector.expected(T0 + 4 * 86400) == pytest.approx(before, rel=0.05)  # the zeros were not learned
    sparse = VolumeSpikeDetector(MINUTE)  # for a sparse brand zeros are ordinary data
    results = feed(sparse, rng.poisson(0.5, size=600))
    assert not any(r.gap for r in results)


def test_a_sudden_five_fold_burst_is_flagged_and_ranked_against_the_brands_own_bursts() -> None:
    rng = np.random.default_rng(53)
    detector = VolumeSpikeDetector(300.0)
    results = feed(detector, rng.poisson(40.0, size=2 * 288), bucket=300.0)
    assert not any(r.spike for r in results)
    burst = detector.update(T0 + 2 * 86400, 200.0)
    assert burst.spike and burst.burst_rank == 1 and burst.history_buckets == 2 * 288


def test_state_is_bounded_and_updates_are_fast() -> None:
    import time

    rng = np.random.default_rng(59)
    counts = rng.poisson(20.0, size=40 * 288).astype(float)
    counts[rng.integers(0, len(counts), size=400)] *= 8  # a burst every few hours for 40 days
    detector = VolumeSpikeDetector(300.0)
    start = time.perf_counter()
    for i, c in enumerate(counts):
        detector.update(T0 + i * 300.0, c)
    rate = len(counts) / (time.perf_counter() - start)
    assert len(json.dumps(detector.to_state())) < 20_000
    assert rate > 20_000  # >= 50k/s on an idle core; the margin is for shared CI machines


def test_state_round_trip_gives_identical_decisions() -> None:
    rng = np.random.default_rng(11)
    counts = rng.poisson(6.0, size=2 * 1440)
    counts[1500] = 90
    volume = VolumeSpikeDetector(MINUTE)
    alerter = SpikeAlerter(MINUTE)
    negative = NegativeSpikeDetector(MINUTE)
    for i, c in enumerate(counts):
        t = T0 + i * MINUTE
        volume.update(t, c)
        alerter.update(t, c)
        negative.update(t, int(c), int(rng.binomial(c, 0.1)))
    copies = [type(d).from_state(json.loads(json.dumps(d.to_state()))) for d in (volume, alerter, negative)]
    tail = rng.poisson(6.0, size=600)
    tail[100] = tail[400] = 100
    start = T0 + len(counts) * MINUTE
    for i, c in enumerate(tail):
        t = start + i * MINUTE
        neg = int(rng.binomial(c, 0.4 if 300 <= i < 320 else 0.1))
        assert volume.update(t, c) == copies[0].update(t, c)
        assert alerter.update(t, c) == copies[1].update(t, c)
        assert negative.update(t, int(c), neg) == copies[2].update(t, int(c), neg)


def test_one_burst_is_one_alert() -> None:
    rng = np.random.default_rng(13)
    counts = rng.poisson(5.0, size=600).astype(float)
    counts[300:320] = 60.0  # a burst lasting 20 minutes
    alerter = SpikeAlerter(MINUTE)
    kinds = [alerter.update(T0 + i * MINUTE, c)[1].kind for i, c in enumerate(counts)]
    assert [i for i, k in enumerate(kinds) if k == "opened"] == [300]


# -- negativity -------------------------------------------------------------------------------------
def negativity_baseline(rng: np.random.Generator, hours: int = 6) -> NegativeSpikeDetector:
    detector = NegativeSpikeDetector(MINUTE)
    for i in range(hours * 60):
        total = int(rng.poisson(30))
        result = detector.update(T0 + i * MINUTE, total, int(rng.binomial(total, 0.1)))
        assert not result.spike
    return detector


def test_negative_share_jump_with_many_mentions_is_flagged() -> None:
    detector = negativity_baseline(np.random.default_rng(17))
    result = detector.update(T0 + 360 * MINUTE, 200, 120)
    assert result.spike and result.score > 20
    assert result.expected == pytest.approx(20, rel=0.2)


def test_two_negatives_of_three_are_not_a_spike() -> None:
    detector = negativity_baseline(np.random.default_rng(19))
    result = detector.update(T0 + 360 * MINUTE, 3, 2)
    assert not result.spike and result.score < 3


def test_volume_burst_with_the_usual_mix_is_not_a_negativity_spike() -> None:
    detector = negativity_baseline(np.random.default_rng(23))
    assert not detector.update(T0 + 360 * MINUTE, 300, 31).spike


def test_sustained_shift_of_small_windows_is_found_by_pooling() -> None:
    rng = np.random.default_rng(29)
    detector = negativity_baseline(rng)
    flagged = []
    for i in range(15):
        total = int(rng.poisson(10))
        result = detector.update(T0 + (360 + i) * MINUTE, total, int(rng.binomial(total, 0.35)))
        flagged.append(result.spike)
    assert not flagged[0] and any(flagged)


def test_a_crisis_barely_moves_the_usual_share_but_a_lasting_change_is_learned() -> None:
    rng = np.random.default_rng(31)
    detector = negativity_baseline(rng)
    before = detector.share()
    results = [detector.update(T0 + (360 + i) * MINUTE, 60, 42) for i in range(40)]  # 40 minutes at 70 %
    assert all(r.spike for r in results[2:])
    assert detector.share() - before < 0.05, "the crisis leaked into the brand's usual negative share"
    start = T0 + 400 * MINUTE
    for i in range(2 * 1440):  # then two days at 25 %: the new normal
        total = int(rng.poisson(30))
        detector.update(start + i * MINUTE, total, int(rng.binomial(total, 0.25)))
    assert detector.share() == pytest.approx(0.25, abs=0.04)


def test_pooled_verdicts_say_how_many_windows_they_sum() -> None:
    rng = np.random.default_rng(37)
    detector = negativity_baseline(rng)
    assert detector.update(T0 + 360 * MINUTE, 30, 3).windows == 1
    results = [detector.update(T0 + (361 + i) * MINUTE, 8, 3) for i in range(15)]
    pooled = [r for r in results if r.windows > 1]
    assert pooled and all(r.observed > 3 for r in pooled)  # sums over windows, not this window's 3


def test_negativity_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        NegativeSpikeDetector().update(T0, 2, 3)


# -- detect-series ------------------------------------------------------------------------------------
def write_series(path, counts, bucket: float = 300.0) -> None:
    from datetime import UTC, datetime

    lines = ["timestamp,value"]
    for i, c in enumerate(counts):
        stamp = datetime.fromtimestamp(T0 + i * bucket, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{int(c)}")
    path.write_text("\n".join(lines) + "\n")


def test_detect_series_command(tmp_path) -> None:
    rng = np.random.default_rng(31)
    counts = rng.poisson(30, size=3 * 288)
    counts[500] = 400
    csv_path = tmp_path / "series.csv"
    write_series(csv_path, counts)
    result = CliRunner().invoke(app, ["detect-series", str(csv_path), "--bucket", "5m"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "timestamp,value,score,alert"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == len(counts)
    alerts = [i for i, row in enumerate(rows) if row[3] == "1"]
    assert alerts == [500]
    assert float(rows[500][2]) > 12 and rows[500][1] == "400"


def test_detect_series_reports_bad_csv(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2015-02-26 21:42:53,10\n2015-02-26 21:47:53,ten\n")
    result = CliRunner().invoke(app, ["detect-series", str(bad)])
    assert result.exit_code == 2
    assert "line 3" in result.output and "bad value" in result.output
    wrong_header = tmp_path / "header.csv"
    wrong_header.write_text("time,count\n2015-02-26 21:42:53,10\n")
    result = CliRunner().invoke(app, ["detect-series", str(wrong_header)])
    assert result.exit_code == 2 and "timestamp,value" in result.output
    result = CliRunner().invoke(app, ["detect-series", str(bad), "--bucket", "five"])
    assert result.exit_code == 2 and "--bucket" in result.output


def test_series_parsing_details(tmp_path) -> None:
    assert parse_duration("5m") == 300 and parse_duration("90") == 90 and parse_duration("1h") == 3600
    path = tmp_path / "s.csv"
    path.write_text("value,timestamp\n3,2015-02-26T21:42:53Z\n\n4,2015-02-26 21:47:53.000000\n")
    rows = read_series(path)
    assert [r.value for r in rows] == [3.0, 4.0] and rows[1].t - rows[0].t == 300
    path.write_text("timestamp,value\n2015-02-26 21:42:53,-1\n")
    with pytest.raises(SeriesFormatError, match="line 2"):
        read_series(path)
    path.write_text("timestamp,value\n")
    with pytest.raises(SeriesFormatError, match="no data"):
        read_series(path)


@pytest.mark.data
def test_real_tweet_series_windows_are_detected(shared_data) -> None:
    from crisiswatch.offline import nab
    from crisiswatch.series import parse_timestamp

    folder = shared_data / "nab-tweets"
    windows = json.loads((folder / "windows.json").read_text())
    rows = read_series(folder / "Twitter_volume_IBM.csv")
    alerts = [alert for _, _, alert in detect(rows, 300.0)]
    spans = [(parse_timestamp(a), parse_timestamp(b)) for a, b in windows["Twitter_volume_IBM.csv"]]
    score = nab.score_alerts(alerts, nab.window_rows([r.t for r in rows], spans))
    months = (rows[-1].t - rows[0].t) / (30 * 86400)
    assert score.false_negatives == 0
    assert len(score.false_positive_rows) / months <= 8
    assert score.normalised > 60
    assert not math.isnan(score.raw)


def test_cool_down_holds_back_a_second_burst_unless_escalation_is_on() -> None:
    rng = np.random.default_rng(37)
    counts = rng.poisson(5.0, size=600).astype(float)
    counts[200] = 60.0
    counts[400] = 400.0  # much bigger, within the cool-down of the first
    plain, escalating = SpikeAlerter(MINUTE), SpikeAlerter(MINUTE, escalate=True)
    opened = {"plain": [], "escalating": []}
    for i, c in enumerate(counts):
        for name, alerter in (("plain", plain), ("escalating", escalating)):
            if alerter.update(T0 + i * MINUTE, c)[1].kind == "opened":
                opened[name].append(i)
    assert opened == {"plain": [200], "escalating": [200, 400]}
