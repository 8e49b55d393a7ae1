"""The prepared GPU run (bench/gpu_report.py) works end to end here, on PyTorch's CPU backend, and
says why it was not made where no GPU is present."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the GPU run drives PyTorch")

from nnspec.bench import gpu_report


def test_the_gpu_run_on_the_cpu_backend_fills_every_row(tmp_path):
    out = tmp_path / "gpu.md"
    assert gpu_report.main(["--device", "cpu", "--size", "T=70,B=2,H=8", "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith(("| lstm", "| gru"))]
    assert len(rows) == 2 * len(gpu_report.MODES)
    # PyTorch on the CPU rounds as float32 declares: no element over its bound, bounds finite
    assert all("| yes |" in row and "| 0.0 % |" in row for row in rows), rows


def test_without_a_gpu_the_report_says_so_and_why(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the run would be made")
    out = tmp_path / "gpu.md"
    assert gpu_report.main(["--out", str(out)]) == 0
    assert "no CUDA device" in out.read_text()


def test_a_bad_size_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        gpu_report.main(["--size", "T=zero", "--device", "cpu"])
    assert info.value.code == 2
    assert "T must be a positive integer" in capsys.readouterr().err
