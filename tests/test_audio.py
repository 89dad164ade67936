"""Tests for rlspoof.data.audio: every unusable file is an AudioError that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rlspoof.data.audio import (
    audio_info,
    crop_or_pad,
    load_audio,
    resample,
    sliding_windows,
    window_starts,
    write_audio,
)
from rlspoof.errors import AudioError, RlspoofError

SR = 16_000


def _sine(freq: float = 440.0, sr: int = SR, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(path: Path, wave: np.ndarray, sr: int = SR, subtype: str | None = "PCM_16") -> Path:
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


def _raises_naming(path: Path, match: str | None = None, **kwargs) -> AudioError:
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, **kwargs)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert isinstance(info.value, RlspoofError)
    return info.value


# --- bad inputs -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    _raises_naming(tmp_path / "nope.wav", "does not exist")


def test_fifo_and_folder_are_refused_without_opening(tmp_path: Path):
    """Opening a FIFO blocks until a writer appears: a scan must refuse it, not hang."""
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    _raises_naming(fifo, "not a regular file")
    (tmp_path / "dir.wav").mkdir()
    _raises_naming(tmp_path / "dir.wav", "not a regular file")


def test_random_bytes_with_wav_extension(tmp_path: Path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _raises_naming(path, "unreadable")


# libsndfile 1.2.x does not error on a WAV cut short: it clamps the frame count to the bytes
# present, so load_audio compares the RIFF data-chunk size with the file size itself.
def test_truncated_wav(tmp_path: Path):
    path = _write(tmp_path / "cut.wav", _sine())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises_naming(path, "truncated")


def test_truncated_wav_is_never_a_crash(tmp_path: Path):
    """Whatever libsndfile does, a cut file is either rejected cleanly or shorter, never padded."""
    path = _write(tmp_path / "cut.wav", _sine())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        wave = load_audio(path)
    except AudioError as exc:
        assert str(path) in str(exc)
    else:
        assert wave.shape[0] < SR


def test_truncated_flac(tmp_path: Path):
    path = _write(tmp_path / "cut.flac", _sine())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises_naming(path)


def test_zero_byte_file(tmp_path: Path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _raises_naming(path)


def test_header_only_zero_frames(tmp_path: Path):
    path = _write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32))
    assert audio_info(path).frames == 0
    _raises_naming(path, "empty")


def test_digital_silence(tmp_path: Path):
    path = _write(tmp_path / "silent.wav", np.zeros(SR, dtype=np.float32))
    _raises_naming(path, "silence")
    assert np.all(load_audio(path, reject_silence=False) == 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(tmp_path: Path, bad: float):
    wave = _sine()
    wave[[10, 500]] = bad
    path = _write(tmp_path / "bad.wav", wave, subtype="FLOAT")
    _raises_naming(path, "2 NaN/Inf")


def test_wrong_rate_without_resampling(tmp_path: Path):
    path = _write(tmp_path / "cd.wav", _sine(sr=44_100), sr=44_100)
    err = _raises_naming(path, allow_resample=False)
    assert "44100" in err.reason and "16000" in err.reason


def test_resampling_keeps_length_and_frequency(tmp_path: Path):
    path = _write(tmp_path / "cd.wav", _sine(1000.0, sr=44_100), sr=44_100)
    wave = load_audio(path, SR)
    assert wave.dtype == np.float32 and wave.shape == (SR,)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    peak_hz = np.argmax(spectrum) * SR / len(wave)
    assert abs(peak_hz - 1000.0) <= 2.0
    assert load_audio(path, None).shape == (44_100,)  # None keeps the file's own rate


def test_resample_identity():
    x = _sine()
    assert resample(x, SR, SR) is x


def test_stereo_downmixed_to_mono(tmp_path: Path):
    left, right = _sine(440.0), _sine(880.0, amp=0.25)
    path = _write(tmp_path / "st.wav", np.stack([left, right], axis=1))
    wave = load_audio(path)
    assert wave.ndim == 1 and wave.shape == (SR,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=2e-4)


@pytest.mark.parametrize("ext, subtype", [(".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_flac_and_ogg(tmp_path: Path, ext: str, subtype: str):
    x = _sine()
    path = _write(tmp_path / f"a{ext}", x, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.shape == (SR,)
    assert np.corrcoef(wave, x)[0, 1] > 0.99


def test_write_audio_round_trip_and_refuses_nan(tmp_path: Path):
    x = _sine()
    path = write_audio(tmp_path / "sub" / "w.flac", x)
    assert sf.info(str(path)).subtype == "PCM_16"
    np.testing.assert_allclose(load_audio(path), x, atol=1e-4)
    x[3] = np.nan
    with pytest.raises(AudioError, match="NaN") as info:
        write_audio(tmp_path / "nan.wav", x)
    assert "nan.wav" in str(info.value)
    assert not (tmp_path / "nan.wav").exists()


# --- crop_or_pad and sliding_windows --------------------------------------------------------


def test_crop_long_to_exact_length():
    x = np.arange(100, dtype=np.float32)
    for mode in ("start", "center"):
        assert crop_or_pad(x, 30, mode=mode).shape == (30,)
    out = crop_or_pad(x, 30, rng=np.random.default_rng(0))
    assert out.shape == (30,)
    assert np.all(np.diff(out) == 1)  # a contiguous window
    assert crop_or_pad(x, 100, mode="start").shape == (100,)


def test_short_is_repeat_padded():
    x = np.arange(1, 4, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(x, 8, mode="start"), [1, 2, 3, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(
        crop_or_pad(x, 7, rng=np.random.default_rng(0)), [1, 2, 3, 1, 2, 3, 1]
    )


def test_start_and_center():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(x, 4, mode="start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(crop_or_pad(x, 4, mode="center"), [3, 4, 5, 6])


def test_random_mode_needs_rng_and_is_deterministic():
    x = np.arange(1000, dtype=np.float32)
    with pytest.raises(ValueError, match="rng"):
        crop_or_pad(x, 10)
    a = crop_or_pad(x, 10, rng=np.random.default_rng(7))
    b = crop_or_pad(x, 10, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    starts = {crop_or_pad(x, 10, rng=np.random.default_rng(s))[0] for s in range(20)}
    assert len(starts) > 1


def test_crop_or_pad_rejects_bad_arguments():
    x = np.ones(10, dtype=np.float32)
    with pytest.raises(ValueError):
        crop_or_pad(x, 0, mode="start")
    with pytest.raises(ValueError):
        crop_or_pad(np.zeros(0, dtype=np.float32), 5, mode="start")
    with pytest.raises(ValueError, match="mode"):
        crop_or_pad(x, 5, mode="middle")


def test_sliding_windows_cover_clip_last_end_aligned():
    x = np.arange(100, dtype=np.float32)
    w = sliding_windows(x, window=30, hop=20)
    assert w.shape[1] == 30
    np.testing.assert_array_equal(w[0], x[:30])
    np.testing.assert_array_equal(w[-1], x[-30:])
    covered = np.zeros(100, dtype=bool)
    starts = [int(row[0]) for row in w]
    for s in starts:
        covered[s : s + 30] = True
    assert covered.all()
    assert starts == [0, 20, 40, 60, 70]
    # exact fit: no duplicated last window
    assert [int(r[0]) for r in sliding_windows(np.arange(50.0), 30, 20)] == [0, 20]
    assert window_starts(100, 30, 20) == starts and window_starts(10, 30, 20) == [0]


def test_sliding_windows_short_clip_is_one_padded_window():
    w = sliding_windows(np.arange(1.0, 4.0), window=7, hop=2)
    np.testing.assert_array_equal(w, [[1, 2, 3, 1, 2, 3, 1]])
    with pytest.raises(ValueError):
        sliding_windows(np.arange(10.0), window=0, hop=1)
