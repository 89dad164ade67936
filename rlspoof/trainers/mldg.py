"""MLDG fine-tuning (seed 003: meta-learned LoRA): attack families as domains, one held out per
step. With ``use_peft`` only the LoRA adapters and the head train, as in the paper; without it,
the same objective trains every unfrozen weight.
"""

from __future__ import annotations

import torch

from rlspoof.algos.meta import mldg_objective, mldg_split
from rlspoof.errors import RlspoofError
from rlspoof.trainers.sft import SFTTrainer, sft_loss


class MLDGTrainer(SFTTrainer):
    """``MLDGConfig``. A batch with fewer than two spoof families takes a plain ERM step (logged
    as ``mldg_erm_fraction``); a balanced mixture by attack (``mix_by: attack``,
    ``balance_labels: true``) makes that rare."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.world_size > 1:
            # The virtual step runs outside the DDP/DeepSpeed wrapper (torch.func), so gradients
            # would not be synchronised across ranks.
            raise RlspoofError("mldg runs in one process only (its inner step bypasses the DDP wrapper)")
        self._generator = torch.Generator().manual_seed(self.args.seed)

    def training_forward(self, model, inputs) -> dict:
        """The split of the batch into meta-train and meta-test families; the forward passes
        run inside the objective, on each part. ERM (one pass) when there is no split."""
        split = mldg_split(inputs["attack"], inputs["labels"], self.args.meta_test_domains, self._generator)
        self._metrics["mldg_erm_fraction"].append(float(split is None))
        return super().training_forward(model, inputs) if split is None else {"mldg_split": split}

    def training_loss(self, model, inputs, outputs) -> torch.Tensor:
        if "mldg_split" not in outputs:
            return super().training_loss(model, inputs, outputs)
        a = self.args

        def loss_on(forward, rows):
            rows = rows.to(inputs["labels"].device)
            mask = inputs.get("attention_mask")
            logits = forward(inputs["input_values"][rows], None if mask is None else mask[rows])
            return sft_loss(logits, inputs["labels"][rows], a.class_weights, a.label_smoothing_factor)

        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        loss, parts = mldg_objective(model, params, loss_on, *outputs["mldg_split"], meta_lr=a.meta_lr,
                                     meta_test_weight=a.meta_test_weight, first_order=a.first_order)
        for key, value in parts.items():
            self._metrics[key].append(value)
        return loss
