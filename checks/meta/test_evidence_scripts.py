"""The evidence scripts behind spec/tolerances.md's tables (bench/bound_evidence.py,
bench/gradient_bound_evidence.py) run end to end at toy sizes: a change of the bounds' interface
must not leave them broken until the next time someone regenerates reports/bounds_at_scale.md."""

from __future__ import annotations

import torch

from nnspec.bench import bound_evidence, gradient_bound_evidence


def test_the_bound_evidence_writes_every_table(tmp_path, capsys):
    out = tmp_path / "bounds.md"
    threads = torch.get_num_threads()
    try:
        assert bound_evidence.main(["--sizes", "4,2,3", "--long-double", "4,2,3",
                                    "--variance", "4,2,3,8", "--no-library", "--cost", "4,2,3",
                                    "--memory", "4,2,3,8", "--stacked", "4,2,3,8",
                                    "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    text = out.read_text(encoding="utf-8")
    for table in ("## 3.", "## 4. The library allowance", "## 5. The variance model",
                  "## 7. The bound's cost", "## 8. A long memory", "## 9. Stacked layers"):
        assert table in text
    assert "| LSTM | 4, 2, 3 | float32 | yes |" in text


def test_the_gradient_bound_evidence_prints_its_table(capsys):
    threads = torch.get_num_threads()
    try:
        gradient_bound_evidence.main(["4,2,3"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.count("\n|") >= 3, out
