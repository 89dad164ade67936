"""Report figures: each function writes a readable PNG of what it was given (the ``drawn``
fixture reads the figure's axes, curves, bars and images just before it is saved) and
rejects bad input clearly.

Kept light (small arrays, small figures) - the whole module runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rlspoof.metrics.forgetting import forgetting_report
from rlspoof.reports.comparison_plots import forgetting_bars, metric_heatmap, training_curves
from rlspoof.reports.plots import det_curves, score_histograms

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_side=150):
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        width, height = image.size
    assert min_side <= width <= 5000 and min_side <= height <= 5000, (width, height)
    return width, height


@pytest.fixture
def drawn(monkeypatch):
    """Each saved figure as a list of its axes: title, labelled curves (label -> (x, y)),
    bar heights and image arrays, read just before ``save_figure`` clears it."""
    from rlspoof.reports import comparison_plots, plots, style

    figures = []
    save = style.save_figure

    def spy(fig, path):
        figures.append([{
            "title": ax.get_title(),
            "curves": {line.get_label(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
                       for line in ax.get_lines() if not line.get_label().startswith("_")},
            "bars": [float(p.get_height()) for p in ax.patches if hasattr(p, "get_height")],
            "n_polygons": sum(type(p).__name__ == "Polygon" for p in ax.patches),
            "images": [np.ma.asarray(im.get_array()) for im in ax.get_images()],
        } for ax in fig.axes])
        return save(fig, path)

    for module in (plots, comparison_plots):  # each calls the name it imported from style
        monkeypatch.setattr(module, "save_figure", spy)
    return figures


def _scored(seed, shift=2.0, n_bona=60, n_spoof=140, string_labels=False):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(shift, 1.0, n_bona), rng.normal(-shift, 1.0, n_spoof)])
    if string_labels:
        labels = np.array(["bonafide"] * n_bona + ["spoof"] * n_spoof)
    else:
        labels = np.array([0] * n_bona + [1] * n_spoof)
    return scores, labels


@pytest.fixture(scope="module")
def scored():
    return {
        "pretrained": _scored(0, 0.5),
        "sft": _scored(1, 1.0, string_labels=True),
        "grpo": _scored(2, 1.5),
    }


# --------------------------------------------------------------------------- DET


def test_det_curves_writes_png_with_eer_legend(tmp_path, scored, monkeypatch, drawn):
    import sys

    from matplotlib.axes import Axes

    from rlspoof.metrics.eer import compute_eer_from_labels

    seen = []
    original = Axes.legend

    def spy(self, *args, **kwargs):
        legend = original(self, *args, **kwargs)
        seen.extend(t.get_text() for t in legend.get_texts())
        return legend

    monkeypatch.setattr(Axes, "legend", spy)
    out = det_curves(scored, tmp_path / "sub" / "det.png", title="DET")
    assert out == tmp_path / "sub" / "det.png"
    width, height = _assert_png(out)
    assert abs(width - height) < 0.25 * width  # square, equal-aspect DET axes
    eer = compute_eer_from_labels(*scored["grpo"])[0]
    assert f"grpo (EER {100 * eer:.1f}%)" in seen
    assert len(seen) == 3
    [axes] = drawn[0]
    assert sorted(axes["curves"]) == sorted(seen)  # one DET curve per method, nothing else labelled
    for x, y in axes["curves"].values():
        # a DET curve (probit axes): as the threshold rises, the false-alarm axis falls and the
        # miss axis rises, never back
        assert len(x) > 10 and np.all(np.diff(x) <= 1e-9) and np.all(np.diff(y) >= -1e-9)
    # no pyplot: nothing may pile up in its figure registry
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_det_curves_single_method_weak_system(tmp_path):
    scores, labels = _scored(3, 0.0)  # inverted scores: EER > 50 %, the axes widen
    _assert_png(det_curves({"sft": (-scores, labels)}, tmp_path / "det1.png", "weak"))


@pytest.mark.parametrize("fn", [det_curves, score_histograms])
def test_two_class_plots_reject_bad_input(tmp_path, fn):
    png = tmp_path / "x.png"
    with pytest.raises(ValueError, match="empty"):
        fn({}, png, "t")
    with pytest.raises(ValueError, match="'sft'.*got 3 scores but 2 labels"):
        fn({"sft": (np.array([0.1, 0.2, 0.3]), np.array([0, 1]))}, png, "t")
    with pytest.raises(ValueError, match="'sft'.*both bonafide and spoof.*0 spoof"):
        fn({"sft": (np.array([0.1, 0.2]), np.array(["bonafide", "bonafide"]))}, png, "t")
    with pytest.raises(ValueError, match="'sft'.*no scores"):
        fn({"sft": (np.array([]), np.array([]))}, png, "t")
    with pytest.raises(ValueError, match="non-finite"):
        fn({"sft": (np.array([np.nan, 0.2]), np.array([0, 1]))}, png, "t")
    with pytest.raises(ValueError, match="unknown label"):
        fn({"sft": (np.array([0.1, 0.2]), np.array(["bonafide", "fake"]))}, png, "t")
    assert not png.exists()


# --------------------------------------------------------------------------- histograms


def test_score_histograms_two_methods(tmp_path, scored, drawn):
    from rlspoof.metrics.eer import compute_eer_from_labels

    two = {"sft": scored["sft"], "grpo": scored["grpo"]}
    width, height = _assert_png(score_histograms(two, tmp_path / "h.png", "hist"))
    assert width > height  # two panels side by side
    panels = drawn[0]
    assert [p["title"].split(" (")[0] for p in panels] == ["sft", "grpo"]
    for panel, (scores, labels) in zip(panels, two.values(), strict=True):
        assert panel["n_polygons"] == 2  # a bonafide and a spoof histogram
        eer, threshold = compute_eer_from_labels(scores, labels)
        [(x, _)] = panel["curves"].values()  # the EER threshold, drawn where it is
        np.testing.assert_allclose(x, threshold)
        assert f"EER {100 * eer:.1f}%" in panel["title"]


def test_score_histograms_single_method_all_equal_scores(tmp_path):
    out = score_histograms({"m": (np.zeros(4), np.array([0, 0, 1, 1]))}, tmp_path / "h.png", "t")
    _assert_png(out)


# --------------------------------------------------------------------------- training curves


def _history(n, reward=True, offset=0.0):
    out = []
    for step in range(1, n + 1):
        entry = {"step": step, "loss": 1.0 / step + offset, "learning_rate": 1e-5, "epoch": 0.1}
        if reward:
            entry.update(reward=step / n, kl=0.01 * step)
        out.append(entry)
    out.append({"step": n, "eval_eer": 0.1 + offset, "eval_loss": 0.5})
    out.append({"step": n, "train_loss": 0.3, "train_runtime": 1.0})  # final summary entry
    return out


@pytest.fixture
def titles(monkeypatch):
    """Titles set on any Axes while the test runs (one per training-curve panel)."""
    from matplotlib.axes import Axes

    seen = []
    original = Axes.set_title

    def spy(self, label, *args, **kwargs):
        seen.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", spy)
    return seen


def test_training_curves_seed_runs_and_absent_keys(tmp_path, titles, drawn):
    histories = {
        "sft/seed0": _history(4, reward=False),
        "sft/seed1": _history(4, reward=False, offset=0.1),
        "grpo/seed0": _history(4),
        "hybrid": _history(3),
    }
    out = training_curves(histories, tmp_path / "t.png", keys=("loss", "kl", "absent"))
    _assert_png(out)
    assert titles == ["loss", "kl"]  # "absent" skipped, no empty panel
    loss, kl = drawn[0]
    assert set(loss["curves"]) == {"sft", "grpo", "hybrid"} and set(kl["curves"]) == {"grpo", "hybrid"}
    steps, values = kl["curves"]["hybrid"]  # the logged values at their steps
    np.testing.assert_allclose(steps, [1, 2, 3])
    np.testing.assert_allclose(values, [0.01, 0.02, 0.03])


def test_training_curves_single_run_skips_keys_it_did_not_log(tmp_path, titles):
    out = training_curves({"sft": _history(3, reward=False)}, tmp_path / "t.png")
    _assert_png(out)
    assert titles == ["loss", "eval_eer"]  # SFT logs no reward / kl


def test_training_curves_rejects_bad_input(tmp_path):
    png = tmp_path / "t.png"
    with pytest.raises(ValueError, match="empty"):
        training_curves({}, png)
    with pytest.raises(ValueError, match="none of the keys"):
        training_curves({"sft": [{"step": 1, "loss": 0.5}]}, png, keys=("reward",))
    with pytest.raises(ValueError, match="none of the keys"):
        training_curves({"sft": []}, png)
    with pytest.raises(ValueError, match="list of log dicts"):
        training_curves({"sft": {"step": 1, "loss": 0.5}}, png)
    with pytest.raises(ValueError, match="keys is empty"):
        training_curves({"sft": [{"step": 1, "loss": 0.5}]}, png, keys=())
    assert not png.exists()


# --------------------------------------------------------------------------- forgetting


ROLES = {"asv5": "target", "asv19": "old", "itw": "old", "mlaad": "ood"}


def _report(offset):
    before = {s: {"eer": 0.10, "min_dcf": 0.3} for s in ROLES}
    after = {
        "asv5": {"eer": 0.05, "min_dcf": 0.2},
        "asv19": {"eer": 0.10 + offset, "min_dcf": 0.35},
        "itw": {"eer": 0.08, "min_dcf": 0.3},
        "mlaad": {"eer": 0.15 + offset, "min_dcf": 0.4},
    }
    return forgetting_report(before, after, ROLES)


def test_forgetting_bars_two_methods_pp_label(tmp_path, monkeypatch, drawn):
    from matplotlib.axes import Axes

    labels = []
    original = Axes.set_ylabel

    def spy(self, label, *args, **kwargs):
        labels.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_ylabel", spy)
    report = {"sft": _report(0.06), "grpo": _report(0.01)}
    _assert_png(forgetting_bars(report, tmp_path / "f.png"))
    assert labels == ["Δ EER (pp), + = worse"]
    # one bar per method and set, its height the change in pp (legend swatches have height 1)
    heights = [h for h in drawn[0][0]["bars"] if h != 1.0]
    np.testing.assert_allclose(heights, [-5, 6, -2, 11, -5, 1, -2, 6], atol=1e-9)


def test_forgetting_bars_single_method_other_metric(tmp_path):
    _assert_png(forgetting_bars({"grpo": _report(0.01)}, tmp_path / "f1.png", metric="min_dcf"))


def test_forgetting_bars_rejects_bad_input(tmp_path):
    png = tmp_path / "f.png"
    with pytest.raises(ValueError, match="empty"):
        forgetting_bars({}, png)
    with pytest.raises(ValueError, match="metric 'cllr' not in its report"):
        forgetting_bars({"sft": _report(0.0)}, png, metric="cllr")
    partial = forgetting_report(
        {"asv5": {"eer": 0.1}}, {"asv5": {"eer": 0.05}}, {"asv5": "target"}, metrics=("eer",)
    )
    with pytest.raises(ValueError, match="'partial' has no set 'asv19'"):
        forgetting_bars({"sft": _report(0.0), "partial": partial}, png)
    clash = forgetting_report(
        {"asv5": {"eer": 0.1}}, {"asv5": {"eer": 0.05}}, {"asv5": "old"}, metrics=("eer",)
    )
    with pytest.raises(ValueError, match="'asv5' has role 'target'.*'old'"):
        forgetting_bars({"sft": _report(0.0), "clash": clash}, png)
    with pytest.raises(ValueError, match="forgetting_report"):
        forgetting_bars({"sft": {"eer": 0.1}}, png)
    assert not png.exists()


# --------------------------------------------------------------------------- heatmap


def test_metric_heatmap_matrix_with_nan_and_single_cell(tmp_path, drawn):
    R = np.array([[5.0, 20.0, np.nan], [6.0, 4.0, 30.0], [9.0, 5.0, 3.0]])
    _assert_png(metric_heatmap(R, ["s0", "s1", "s2"], ["t0", "t1", "t2"], tmp_path / "r.png", "R"))
    [image] = drawn[0][0]["images"]
    assert image.mask[0, 2] and not image.mask[np.isfinite(R)].any()  # NaN cells left blank
    np.testing.assert_allclose(image.filled(np.nan), R)
    _assert_png(metric_heatmap([[1.234]], ["grpo"], ["asv5"], tmp_path / "one.png", fmt="{:.2f}"))


def test_metric_heatmap_rejects_bad_input(tmp_path):
    png = tmp_path / "r.png"
    with pytest.raises(ValueError, match="empty"):
        metric_heatmap(np.zeros((0, 3)), [], ["a", "b", "c"], png, "t")
    with pytest.raises(ValueError, match="2-D"):
        metric_heatmap(np.zeros(3), ["a"], ["a", "b", "c"], png, "t")
    with pytest.raises(ValueError, match=r"shape \(2, 3\) but got 2 row labels and 2 column"):
        metric_heatmap(np.zeros((2, 3)), ["a", "b"], ["x", "y"], png, "t")
    with pytest.raises(ValueError, match="infinite"):
        metric_heatmap(np.array([[np.inf]]), ["a"], ["x"], png, "t")
    with pytest.raises(ValueError, match="cannot format"):
        metric_heatmap(np.ones((1, 1)), ["a"], ["x"], png, "t", fmt="{:q}")
    assert not png.exists()
