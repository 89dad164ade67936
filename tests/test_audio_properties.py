"""Property-based hardening of audio loading (hypothesis).

Whatever the bytes, ``load_audio`` returns a finite mono float32 array at the requested rate or
raises ``AudioError`` naming the path: never a LibsndfileError, MemoryError, ZeroDivisionError
or ValueError from numpy/scipy. ``validate_manifest(skip_bad=True)`` keeps exactly the good rows
and reports every bad one. Every example writes its files into a fresh temporary folder.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from rlspoof.data.audio import SILENCE_PEAK, load_audio
from rlspoof.data.dataset import validate_manifest
from rlspoof.data.manifest import Manifest, ManifestRow
from rlspoof.errors import AudioError

SR = 16_000
SETTINGS = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=25, deadline=None)


@contextmanager
def _tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _encode(wave: np.ndarray, sr: int, fmt: str, subtype: str) -> bytes:
    out = io.BytesIO()
    sf.write(out, wave, sr, format=fmt, subtype=subtype)
    return out.getvalue()


def _tone(n: int, channels: int = 1, sr: int = SR) -> np.ndarray:
    t = np.arange(n) / sr
    wave = np.stack([0.4 * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(channels)], 1)
    return wave.astype(np.float32)


# Valid files to cut and corrupt: (suffix, bytes, frames).
VALID = {
    "wav16": (".wav", _encode(_tone(1600), SR, "WAV", "PCM_16"), 1600),
    "wav_float_stereo": (".wav", _encode(_tone(1470, 2, 44_100), 44_100, "WAV", "FLOAT"), 1470),
    "flac16": (".flac", _encode(_tone(1600), SR, "FLAC", "PCM_16"), 1600),
    "flac_stereo": (".flac", _encode(_tone(2205, 2, 22_050), 22_050, "FLAC", "PCM_24"), 2205),
}


def _load_checked(path: Path, **kwargs) -> np.ndarray | None:
    """load_audio's contract: finite mono float32 (returned) or an AudioError naming the path
    (None). Any other exception propagates and fails the test."""
    try:
        wave = load_audio(path, **kwargs)
    except AudioError as err:
        assert err.path == str(path) and str(path) in str(err) and err.reason
        event(f"AudioError: {err.reason.split('(')[0].split(':')[0].strip()}")
        return None
    assert isinstance(wave, np.ndarray) and wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size > 0 and bool(np.all(np.isfinite(wave)))
    event("loaded")
    return wave


# --- arbitrary, cut and corrupted bytes -------------------------------------------------------

PREFIXES = [b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"FORM"]


@SETTINGS
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=600),
       suffix=st.sampled_from([".wav", ".flac"]))
@example(prefix=b"", body=b"", suffix=".wav")
@example(prefix=b"", body=b"", suffix=".flac")
def test_random_bytes(prefix: bytes, body: bytes, suffix: str):
    with _tmp() as tmp:
        path = tmp / f"x{suffix}"
        path.write_bytes(prefix + body)
        _load_checked(path)


@SETTINGS
@given(name=st.sampled_from(sorted(VALID)), data=st.data())
def test_truncated_file_is_rejected_never_padded(name: str, data):
    suffix, full, frames = VALID[name]
    cut = data.draw(st.integers(0, len(full) - 1), label="cut")
    with _tmp() as tmp:
        path = tmp / f"cut{suffix}"
        path.write_bytes(full[:cut])
        wave = _load_checked(path)
    if suffix == ".wav":  # the RIFF data chunk knows its size: any cut is detected
        assert wave is None, f"WAV cut at byte {cut} of {len(full)} was accepted"
    elif wave is not None:  # FLAC: libsndfile may decode the frames that are complete
        assert wave.shape[0] < frames, "a cut FLAC must not come back at full length"


PAYLOAD = (0.3 * np.sin(np.arange(400) / 7.0) * 32767).astype("<i2").tobytes()  # 400 frames


def _wav_with(rate: int = SR, channels: int = 1, riff: int | None = None, fmt: int = 16,
              data: int | None = None) -> bytes:
    """A 16-bit PCM WAV whose header fields may lie about the 800-byte payload that follows."""
    block = channels * 2
    header = struct.pack("<4sI4s4sIHHIIHH", b"RIFF", 36 + len(PAYLOAD) if riff is None else riff,
                         b"WAVE", b"fmt ", fmt, 1, channels, rate, rate * block & 0xFFFFFFFF,
                         block & 0xFFFF, 16)
    size = len(PAYLOAD) if data is None else data
    return header + struct.pack("<4sI", b"data", size) + PAYLOAD


@SETTINGS
@given(pos=st.integers(0, 43), value=st.integers(0, 255))
@example(pos=27, value=0x7F)  # sample rate 2 130 722 432 Hz: resampling wanted ~340 GB
@example(pos=26, value=0xFF)  # 16 727 680 Hz: a 2.5 GB filter, seconds of CPU per file
@example(pos=25, value=0x00)  # 128 Hz: a 125x upsampling of a corrupt header
@example(pos=22, value=0xFF)  # 255 channels
@example(pos=34, value=0x00)  # 0 bits per sample
def test_corrupted_header_byte(pos: int, value: int):
    data = bytearray(_wav_with())
    data[pos] = value
    with _tmp() as tmp:
        path = tmp / "hdr.wav"
        path.write_bytes(bytes(data))
        wave = _load_checked(path)
    if wave is not None:
        assert wave.shape[0] <= 400 * SR  # no runaway upsampling of a broken rate


HUGE = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]


@SETTINGS
@given(riff=st.sampled_from(HUGE + [None]), fmt=st.sampled_from([16, 18, 0xFFFFFFF0]),
       data=st.sampled_from(HUGE + [None]), rate=st.sampled_from([0, 1, 8000, SR, 0x7FFFFFFF]),
       channels=st.sampled_from([0, 1, 2, 1000, 0xFFFF]))
@example(riff=None, fmt=16, data=0x7FFFFFFF, rate=SR, channels=1)
@example(riff=None, fmt=16, data=None, rate=0x7FFFFFFF, channels=1)
def test_huge_header_claims(riff, fmt, data, rate, channels):
    with _tmp() as tmp:
        path = tmp / "claims.wav"
        path.write_bytes(_wav_with(rate, channels, riff, fmt, data))
        wave = _load_checked(path)
    if data not in (None, 0, 0xFFFFFFFF):  # the data chunk promises more than the file holds
        assert wave is None


# --- valid audio: any rate, channel count, length and content ----------------------------------

RATES = st.one_of(st.sampled_from([8000, 11025, 12345, 16000, 22050, 32000, 44100, 48000]),
                  st.integers(8000, 48000))
FORMATS = st.sampled_from([("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "PCM_24"),
                           ("FLAC", "PCM_16")])


@st.composite
def audio_case(draw):
    fmt, subtype = draw(FORMATS)
    case = {
        "fmt": fmt, "subtype": subtype, "sr": draw(RATES), "channels": draw(st.integers(1, 6)),
        "n": draw(st.one_of(st.integers(0, 4000), st.sampled_from([0, 1, 2, 3]))),
        "amp": draw(st.sampled_from([0.0, 1e-6, 2e-5, 1e-3, 0.5, 1.0])),
        "seed": draw(st.integers(0, 2**32 - 1)), "bad": [],
        "shape": draw(st.sampled_from(["noise", "square"])),
    }
    if subtype == "FLOAT":  # only float files can hold NaN/Inf or values far beyond +-1
        case["amp"] = draw(st.sampled_from([case["amp"], 1e3, 1e30, 3e38]))
        if case["n"]:
            case["bad"] = draw(st.lists(st.tuples(
                st.integers(0, case["n"] - 1), st.integers(0, case["channels"] - 1),
                st.sampled_from([math.nan, math.inf, -math.inf])), max_size=3))
    return case


def _write_case(case: dict, folder: Path) -> Path:
    rng = np.random.default_rng(case["seed"])
    wave = rng.uniform(-1, 1, (case["n"], case["channels"]))
    if case["shape"] == "square":  # full-scale steps: the resampling filter overshoots them
        wave = np.sign(np.sin(np.arange(case["n"]) / 20.0))[:, None] * np.ones_like(wave)
    wave = (case["amp"] * wave).astype(np.float32)
    for i, c, value in case["bad"]:
        wave[i, c] = value
    path = folder / ("a.flac" if case["fmt"] == "FLAC" else "a.wav")
    sf.write(str(path), wave, case["sr"], format=case["fmt"], subtype=case["subtype"])
    return path


@SETTINGS
@given(case=audio_case())
@example(case={"fmt": "WAV", "subtype": "FLOAT", "sr": 44100, "channels": 1, "n": 3000,
               "amp": 3e38, "seed": 1, "bad": [], "shape": "square"})  # was returned with Inf
@example(case={"fmt": "WAV", "subtype": "PCM_16", "sr": 12345, "channels": 6, "n": 1,
               "amp": 0.5, "seed": 0, "bad": [], "shape": "noise"})
@example(case={"fmt": "WAV", "subtype": "FLOAT", "sr": 16000, "channels": 2, "n": 100,
               "amp": 0.5, "seed": 0, "bad": [(5, 1, math.inf), (7, 0, -math.inf)],
               "shape": "noise"})
@example(case={"fmt": "FLAC", "subtype": "PCM_16", "sr": 22050, "channels": 2, "n": 0,
               "amp": 0.5, "seed": 0, "bad": [], "shape": "noise"})  # 0-frame FLAC: unreadable
def test_valid_audio_any_rate_channels_length_content(case: dict):
    n = case["n"]
    with _tmp() as tmp, np.errstate(over="ignore", invalid="ignore"):
        path = _write_case(case, tmp)
        wave = _load_checked(path)
        raw = _load_checked(path, sample_rate=None, reject_silence=False)
        if n == 0:  # documented: empty audio is an AudioError
            assert wave is None and raw is None
            return
        stored, sr = sf.read(str(path), dtype="float32", always_2d=True)
        mono = stored.mean(axis=1) if stored.shape[1] > 1 else stored[:, 0]
        strict = None
        if sr != SR:
            try:
                load_audio(path, allow_resample=False)
            except AudioError as err:
                strict = err
    # What audio.py documents: NaN/Inf and digital silence are AudioErrors too.
    if not np.all(np.isfinite(mono)):
        assert wave is None and raw is None
        return
    assert raw is not None and raw.shape == (n,)
    np.testing.assert_array_equal(raw, mono)
    if float(np.max(np.abs(mono))) <= SILENCE_PEAK:
        assert wave is None, "digital silence must be rejected"
        return
    if case["amp"] > 1e30 and wave is None:  # overflow while resampling: rejected, not Inf
        return
    assert wave is not None
    assert abs(wave.shape[0] - n * SR / sr) <= 1, (wave.shape, n, sr)
    if sr == SR:
        np.testing.assert_array_equal(wave, mono)
    else:
        assert strict is not None and str(sr) in strict.reason and str(SR) in strict.reason


# --- validate_manifest(skip_bad=True) ----------------------------------------------------------


def _bad_files() -> dict[str, bytes | None]:
    wav = VALID["wav16"][1]
    nan = _tone(800)
    nan[100, 0] = np.nan
    return {
        "missing": None,
        "garbage": b"RIFF this is not really a wave file",
        "empty_file": b"",
        "zero_frames": _encode(np.zeros((0, 1), np.float32), SR, "WAV", "PCM_16"),
        "truncated": wav[: len(wav) // 2],
        "nan": _encode(nan, SR, "WAV", "FLOAT"),
        "silent": _encode(np.zeros((800, 1), np.float32), SR, "WAV", "PCM_16"),
    }


GOOD = {"wav": VALID["wav16"][1], "flac_22k_stereo": VALID["flac_stereo"][1]}
BAD = _bad_files()


@FEW
@given(kinds=st.lists(st.sampled_from(sorted(GOOD) + sorted(BAD)), min_size=1, max_size=8))
@example(kinds=["missing", "wav", "nan", "silent", "flac_22k_stereo", "truncated"])
def test_validate_manifest_skip_bad_keeps_good_rows_reports_bad_ones(kinds: list[str]):
    with _tmp() as root:
        rows = []
        for i, kind in enumerate(kinds):
            rel = f"audio/{i:02d}_{kind}.{'flac' if kind.startswith('flac') else 'wav'}"
            content = GOOD.get(kind, BAD.get(kind))
            if content is not None:
                (root / rel).parent.mkdir(exist_ok=True)
                (root / rel).write_bytes(content)
            rows.append(ManifestRow(f"utt{i}", rel, "spoof" if i % 2 else "bonafide"))
        manifest = Manifest(rows, root=root, origin=root / "m.csv")
        calls: list[tuple[int, int]] = []
        good, skipped = validate_manifest(manifest, SR, skip_bad=True,
                                          progress=lambda d, t: calls.append((d, t)))
        bad_at = [i for i, kind in enumerate(kinds) if kind in BAD]
        assert [r.utt_id for r in good] == [f"utt{i}" for i, k in enumerate(kinds) if k in GOOD]
        assert good.root == manifest.root and good.origin == manifest.origin
        assert [(u, p) for u, p, _ in skipped] == [
            (f"utt{i}", str(root / rows[i].path)) for i in bad_at]
        assert all(reason.strip() for _, _, reason in skipped)
        assert len(good) + len(skipped) == len(kinds)  # nothing dropped silently
        assert calls == [(i + 1, len(kinds)) for i in range(len(kinds))]
        if bad_at:
            first = bad_at[0]
            try:
                validate_manifest(manifest, SR, skip_bad=False)
            except AudioError as err:
                assert err.path == str(root / rows[first].path)
                assert f"row {first + 1}" in str(err) and f"utt_id utt{first}" in str(err)
            else:
                raise AssertionError("skip_bad=False accepted a bad file")
