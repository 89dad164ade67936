"""``evaluate`` metric: EER, minDCF, actDCF and Cllr with the ASVspoof 5 conventions.

Load it with ``rlspoof.metrics.load_evaluate_metric()`` (or ``evaluate.load(<this folder>)``):
evaluate loads a local folder that holds a script of the same name, with no Hub access.
The numbers come from the plain functions in ``rlspoof.metrics``.
"""

import datasets
import evaluate

from rlspoof.metrics.calibration import cllr
from rlspoof.metrics.dcf import act_dcf, min_dcf
from rlspoof.metrics.eer import compute_eer
from rlspoof.metrics.report import split_by_label

_DESCRIPTION = """\
Spoofing-countermeasure metrics with the ASVspoof 5 evaluation-package conventions: equal error
rate (EER), normalised minimum and actual detection cost (minDCF, actDCF; P_spoof = 0.05,
C_miss = 1, C_fa = 10) and the log-likelihood-ratio cost Cllr (bits). Higher score = more
bonafide; actDCF and Cllr read the scores as natural-log likelihood ratios.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `float`): one score per trial, higher = more bonafide.
    references (`list` of `int`): 0 = bonafide, 1 = spoof.
Returns:
    eer (`float`): equal error rate, a fraction in [0, 1].
    min_dcf (`float`): minimum normalised DCF, in [0, 1].
    act_dcf (`float`): normalised DCF at the Bayes threshold -ln(1.9).
    cllr (`float`): log-likelihood-ratio cost in bits.
Examples:
    >>> metric = rlspoof.metrics.load_evaluate_metric()
    >>> metric.compute(predictions=[2.0, 1.5, -1.0, -3.0], references=[0, 0, 1, 1])
"""

_CITATION = """\
@inproceedings{asvspoof5,
  title = {{ASVspoof} 5: crowdsourced speech data, deepfakes, and adversarial attacks at scale},
  author = {Wang, Xin and others},
  booktitle = {ASVspoof Workshop},
  year = {2024}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpoofEER(evaluate.Metric):
    """EER / minDCF / actDCF / Cllr of bonafide-vs-spoof scores."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    # float64: float32 storage would round the scores and change the numbers.
                    "predictions": datasets.Value("float64"),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references):
        scores, is_bona, is_spoof = split_by_label(predictions, references)
        bona, spoof = scores[is_bona], scores[is_spoof]
        return {
            "eer": compute_eer(bona, spoof)[0],
            "min_dcf": min_dcf(bona, spoof)[0],
            "act_dcf": act_dcf(bona, spoof),
            "cllr": cllr(bona, spoof),
        }
