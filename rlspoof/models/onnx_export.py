"""A policy as an ONNX graph (``rlspoof export --format onnx``), and the runner that scores with
it (``rlspoof detect --model model.onnx``).

The graph is the policy's utterance path: waveforms in (``input_values``, float32
[batch, samples], both axes dynamic), ``logits`` [batch, 2] (column 0 bonafide, 1 spoof) and
``score`` [batch] (``logit[bonafide] - logit[spoof]``, higher = more bonafide) out. It has no
attention mask: every row of a batch is audio, so a batch holds clips of one length, which
``OnnxDetector`` guarantees by grouping equal lengths instead of padding. Clips shorter than
the encoder's receptive field are repeat-padded before the graph, as ``SpoofPolicy.score``
does; the graph itself accepts no fewer than ``min_samples`` samples.

What the graph leaves out: a frame head (mix-frame post-training only; detectors score
utterances), and LoRA adapters as separate weights (they are merged into a copy first, so the
graph computes the same function). A JSON sidecar beside ``model.onnx``
(``rlspoof_onnx.json``) holds what the runner needs and the graph cannot say: sample rate,
``min_samples``, the label order and score convention.

Loading runs no Python from the file: onnxruntime executes the graph's standard operators, and
the export writes the weights inside ``model.onnx`` (no external data files to follow).
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlspoof import __version__
from rlspoof.data.manifest import LABELS
from rlspoof.errors import RlspoofError
from rlspoof.models.frontends import set_spectrogram_dtype
from rlspoof.models.inference import check_finite_scores, scoring_inputs
from rlspoof.models.policy import SpoofPolicy

__all__ = ["ONNX_NAME", "SIDECAR_NAME", "OnnxDetector", "export_onnx", "onnx_graph", "read_sidecar"]

ONNX_NAME = "model.onnx"
SIDECAR_NAME = "rlspoof_onnx.json"
SIDECAR_FORMAT = "rlspoof-onnx/1"
INPUT_NAME = "input_values"
OUTPUT_NAMES = ("logits", "score")
#: ONNX opset of the graph: what onnxruntime >= 1.20 runs, and STFT's (17) or newer.
OPSET = 20
SCORE_CONVENTION = "logit[bonafide] - logit[spoof]; higher = more bonafide"
INSTALL_HINT = "pip install 'rlspoof[onnx]'"


class _ScoringGraph(nn.Module):
    """The exported function: waveforms -> (utterance logits, log-odds score)."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy(input_values)
        return logits, self.policy.logits_to_scores(logits)


def merged_copy(policy: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``policy`` in eval mode, its LoRA adapters (if any) merged into the
    encoder's weights and removed: the same function as plain layers, which is what a graph
    holds. The caller's policy is left as it was."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    policy = copy.deepcopy(policy).float().cpu().eval()
    tuned = [(name, module) for name, module in policy.named_modules() if isinstance(module, BaseTunerLayer)]
    for name, module in tuned:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(policy.get_submodule(parent_name) if parent_name else policy, child, module.get_base_layer())
    return policy


def _check_exporter() -> None:
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            raise RlspoofError(f"ONNX export needs the {module} package: {INSTALL_HINT}") from None


def export_onnx(policy: nn.Module, out_dir: str | Path) -> Path:
    """Write ``out_dir/model.onnx`` (weights inside, no external data) and its sidecar
    ``rlspoof_onnx.json``; return the ``.onnx`` path. See the module docstring for the graph's
    inputs and outputs; the frame head of a mix-frame policy is not exported."""
    _check_exporter()
    graph = _ScoringGraph(merged_copy(policy)).eval()
    # The log-spectrogram in float64: onnxruntime's float32 STFT is off by ~1e-7 absolute, up to
    # 0.7 % on the quietest bins, which the log turns into score gaps of up to 2.2e-3 on the
    # demo's trained detector. In float64 the graph matches the policy with a float64
    # spectrogram within 7e-6, and the float32 policy within its own rounding (up to 1.1e-3;
    # benchmarks/onnx_parity.py). Training keeps float32: the demo's results stay as measured.
    set_spectrogram_dtype(graph, torch.float64)
    min_samples = int(policy.min_samples)
    trace_samples = max(int(policy.sample_rate), 2 * min_samples)  # any length: the axis stays dynamic
    example = (0.1 * torch.randn(2, trace_samples, generator=torch.Generator().manual_seed(0)),)
    shapes = {INPUT_NAME: {0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=min_samples)}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_NAME
    # The dynamo (torch.export) exporter: the TorchScript one cannot export the log-spectrogram
    # front end ("STFT does not currently support complex types": LogSpecConv2d takes
    # torch.stft(return_complex=True)). optimize=False: onnxscript's optimiser removes "x + c"
    # for any |c| <= 1e-8 as a no-op (its constant matching has abs_tol=1e-8), which deleted
    # the front end's log(power + 1e-8) floor and moved quiet clips' scores by up to 0.03
    # (onnxscript 0.7.2). onnxruntime optimises the graph itself when it loads it.
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(graph, example, str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamo=True, dynamic_shapes=shapes, external_data=False, opset_version=OPSET,
                              optimize=False, verbose=False)
        except Exception as exc:  # torch.export / onnxscript raise many kinds; name the cause
            raise RlspoofError(f"ONNX export failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    sidecar = {
        "format": SIDECAR_FORMAT, "model": ONNX_NAME, "sample_rate": int(policy.sample_rate),
        "min_samples": min_samples, "labels": list(LABELS), "score": SCORE_CONVENTION,
        "input": INPUT_NAME, "outputs": list(OUTPUT_NAMES), "opset": OPSET,
        "normalize_input": bool(policy.config.normalize_input), "rlspoof_version": __version__,
        "torch_version": torch.__version__,
    }
    (out_dir / SIDECAR_NAME).write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def onnx_card_section(onnx_path: Path) -> str:
    """The model card's part about the graph: how to feed it and read what it returns."""
    info = read_sidecar(onnx_path)
    return "\n".join([
        "",
        "## Running the ONNX graph",
        f"`{onnx_path.name}` (opset {info['opset']}) takes `{INPUT_NAME}`: float32 [batch, samples], mono "
        f"audio at {info['sample_rate']} Hz, at least {info['min_samples']} samples (repeat a shorter "
        "clip: `rlspoof detect` does), raw samples in [-1, 1] (any per-clip normalisation is inside "
        "the graph). It returns `logits` [batch, 2] (column 0 bonafide, column 1 "
        "spoof) and `score` [batch] = `logit[bonafide] - logit[spoof]`. The graph has no attention "
        "mask: every row must be real audio, so batch clips of equal length, never zero-padded ones. "
        f"`{SIDECAR_NAME}` beside it records these conventions; "
        f"`rlspoof detect --model {onnx_path.name} CLIPS` reads it and runs the graph with onnxruntime.",
        "",
    ])


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """The given loggers at ERROR for a block (the exporter reports each of its steps)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def onnx_graph(path: str | Path) -> Path | None:
    """The ONNX graph ``--model`` names, or None for a policy folder: a path ending in ``.onnx``,
    or a folder ``export --format onnx`` wrote (its ``model.onnx`` and sidecar, no policy)."""
    path = Path(path)
    if path.is_dir():
        exported = (path / ONNX_NAME).is_file() and (path / SIDECAR_NAME).is_file()
        return path / ONNX_NAME if exported and not (path / "config.json").exists() else None
    return path if path.suffix.lower() == ".onnx" else None


def read_sidecar(onnx_path: str | Path) -> dict:
    """The checked sidecar of ``onnx_path`` (``rlspoof_onnx.json`` in its folder)."""
    path = Path(onnx_path).parent / SIDECAR_NAME
    how = "re-export the policy with `rlspoof export POLICY --format onnx --out DIR`, which writes it"
    if not path.is_file():
        raise RlspoofError(f"{path}: missing; an rlspoof ONNX graph needs its sidecar (sample rate, label "
                           f"order, shortest input) next to it; {how}")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RlspoofError(f"{path}: not valid JSON ({exc}); {how}") from None
    problems = _sidecar_problems(info)
    if problems:
        raise RlspoofError(f"{path}: {'; '.join(problems)}; {how}")
    return info


def _sidecar_problems(info: Any) -> list[str]:
    if not isinstance(info, dict):
        return ["not a JSON object"]
    problems = []
    if info.get("format") != SIDECAR_FORMAT:
        problems.append(f"format is {info.get('format')!r}, expected {SIDECAR_FORMAT!r}")
    for key in ("sample_rate", "min_samples"):
        value = info.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key} must be a positive integer, got {value!r}")
    if info.get("labels") != list(LABELS):
        problems.append(f"labels must be {list(LABELS)}, got {info.get('labels')!r}")
    if info.get("input") != INPUT_NAME or info.get("outputs") != list(OUTPUT_NAMES):
        problems.append(f"input/outputs must be {INPUT_NAME!r}/{list(OUTPUT_NAMES)}, got "
                        f"{info.get('input')!r}/{info.get('outputs')!r}")
    return problems


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RlspoofError(f"scoring an ONNX graph needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


class OnnxDetector:
    """An exported graph under onnxruntime, scoring as ``SpoofPolicy.score`` does: what
    ``detect_files`` and ``policy_scores`` need (``sample_rate``, ``min_samples``, ``score``).

    The graph takes no attention mask, so batches are made of equal-length clips (a detector's
    windows mostly are) rather than padded ones; each clip therefore scores exactly as alone.
    onnxruntime runs on CUDA when its GPU build and a GPU are there, else on the CPU.
    """

    labels: tuple[str, str] = LABELS

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise RlspoofError(f"{self.path}: no such ONNX file")
        self.info = read_sidecar(self.path)
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its graph-optimisation notes are not ours
        available = ort.get_available_providers()
        providers = list(providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                                       if p in available])
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...)
            raise RlspoofError(f"{self.path}: onnxruntime cannot load it ({_first_line(exc)})") from None
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or OUTPUT_NAMES[0] not in outputs:
            raise RlspoofError(f"{self.path}: inputs {inputs} and outputs {outputs} are not an rlspoof "
                               f"graph's ({INPUT_NAME!r} -> {list(OUTPUT_NAMES)})")

    @property
    def sample_rate(self) -> int:
        return int(self.info["sample_rate"])

    @property
    def min_samples(self) -> int:
        return int(self.info["min_samples"])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Utterance logits (B x 2, float32) of a (B x samples) batch of equal-length clips."""
        (logits,) = self.session.run([OUTPUT_NAMES[0]], {INPUT_NAME: np.ascontiguousarray(batch, np.float32)})
        return logits

    def score(self, waveforms: Any, batch_size: int = 16, names: Sequence[str] | None = None) -> np.ndarray:
        """float64 log-odds per waveform, in input order, as ``SpoofPolicy.score`` gives them:
        clips shorter than ``min_samples`` repeat-padded, ``NonFiniteScoreError`` (naming the
        inputs, holding every score) when any score is NaN/Inf."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        waves = scoring_inputs(waveforms, names, self.min_samples)
        out = np.empty(len(waves), dtype=np.float64)
        by_length: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            by_length.setdefault(wave.shape[0], []).append(i)
        for same_length in by_length.values():
            for start in range(0, len(same_length), batch_size):
                idx = same_length[start:start + batch_size]
                logits = self.logits(np.stack([waves[i] for i in idx])).astype(np.float64)
                out[idx] = SpoofPolicy.logits_to_scores(logits)
        return check_finite_scores(out, waves, names)
