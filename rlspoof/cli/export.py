"""``rlspoof export``: a policy in a format other tools load, with its model card."""

from __future__ import annotations

from pathlib import Path

import typer

from rlspoof.cli.console import console
from rlspoof.cli.evaluate import TRUST_REMOTE_CODE_HELP, check_out_folder
from rlspoof.errors import RlspoofError

FORMATS = ("hf", "onnx")


def export(
    model: Path = typer.Argument(..., help="Policy folder."),
    output_format: str = typer.Option("hf", "--format", help="hf: a transformers audio classifier "
                                                            "(pipeline('audio-classification') loads it); "
                                                            "onnx: model.onnx, waveforms (batch x samples) "
                                                            "-> logits and score (onnxruntime; "
                                                            "`rlspoof detect --model DIR/model.onnx`)."),
    out: Path = typer.Option(..., "--out", help="New folder to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an existing folder."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_REMOTE_CODE_HELP),
) -> None:
    """Export a policy: model, configs and a model card (README.md); its calibration.json too."""
    from rlspoof.evaluation.calibration import ScoreCalibration
    from rlspoof.models import SpoofPolicy
    from rlspoof.models.hf_classifier import export_hf_classifier
    from rlspoof.models.onnx_export import export_onnx, onnx_card_section
    from rlspoof.reports.model_card import model_card

    if output_format not in FORMATS:
        raise RlspoofError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    check_out_folder(out, overwrite)
    policy = SpoofPolicy.from_pretrained(model, trust_remote_code=trust_remote_code)
    calibration = ScoreCalibration.load(model)  # read first: a bad one fails before any writing
    if output_format == "hf":
        folder = export_hf_classifier(policy, out)
        card = model_card(policy, model, "a transformers audio classifier exported by rlspoof")
        usage = f"transformers.pipeline('audio-classification', model='{folder}')"
    else:
        path = export_onnx(policy, out)
        folder = path.parent
        card = model_card(policy, model, "an ONNX graph exported by rlspoof") + onnx_card_section(path)
        usage = f"rlspoof detect --model {path} CLIPS (onnxruntime)"
    (folder / "README.md").write_text(card)
    if calibration is not None:  # `rlspoof detect` on the export then reports LLRs as on the policy
        calibration.save(folder)
    console.print(f"wrote {folder} (model card: {folder / 'README.md'}); load it with {usage}")
