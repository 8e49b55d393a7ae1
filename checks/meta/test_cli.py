"""Checks of ``nnspec check``, the adapters, the seed 004 walk-through and the pytest plugin.

``nnspec check`` runs in-process (``nnspec.cli.main``) on small modules written to ``tmp_path``.
Each module gets a name of its own: imported modules, and the implementations the checks load,
are cached by name for the whole session. Runs are restricted with ``--only`` and few examples.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import json
import shlex
import subprocess
import sys
import textwrap
import tomllib
import types
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nnspec import adapters, cli, conformance, oracle, progress, pytest_plugin
from nnspec.cli import options
from nnspec.reference import gru as ref_gru
from nnspec.reference import lstm as ref_lstm
from nnspec.reference import rnn as ref_rnn

REPOSITORY = Path(__file__).resolve().parents[2]
needs_examples = pytest.mark.skipif(not (REPOSITORY / "examples").is_dir(),
                                    reason="examples/ exists in a repository checkout only")


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"user_impl_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def nnspec_check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["check", *argv])
    return code, capsys.readouterr().out


CORRECT_LSTM = """
    import numpy as np
    from nnspec.reference.lstm import lstm_cell as reference

    DTYPE = np.float64

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        return reference(x, h, c, w_ih, w_hh, b_ih, b_hh)
"""

#: One contract function per defect, so that one run shows how each is reported.
DEFECTS = """
    import numpy as np
    from nnspec.implementations import reference

    DTYPE = np.float64

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        h1, c1 = reference.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
        return h1[:, :0], c1

    def tanh(x):
        return np.tanh(x).astype(np.float32)

    def sigmoid(x, alpha=1.0):
        return np.full_like(reference.sigmoid(x, alpha), np.nan)

    def linear(x, w, b=None):
        raise ValueError("weights not loaded")
"""


# ---- modules that cannot be used: exit 2, one line ---------------------------------------------

@pytest.mark.parametrize(("source", "complaint"), [
    ("def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None): ...", "does not define DTYPE"),
    ("import numpy as np\nDTYPE = np.int32", "DTYPE = int32 is not a floating-point dtype"),
    ("DTYPE = 'banana'", "DTYPE = 'banana' is not a NumPy dtype"),
    # The trial's false alarms: float16 overflowed the checks' own inputs (every activation id
    # failed, functions called or not), longdouble was held to a bound below float64's rounding.
    ("import numpy as np\nDTYPE = np.float16", "DTYPE = float16 is not supported"),
    ("import numpy as np\nDTYPE = np.longdouble", "is not supported; the contract's dtypes are "
                                                  "float32 and float64"),
    ("raise RuntimeError('cannot find weights.bin')", "raised RuntimeError: cannot find weights.bin"),
    ("import not_installed_dependency_xyz", "something it imports is not installed"),
    ("import sys\nsys.exit(0)", "called sys.exit(0)"),
], ids=["no-DTYPE", "int-DTYPE", "not-a-dtype", "float16-DTYPE", "longdouble-DTYPE",
        "raises-on-import", "missing-dependency", "exits-on-import"])
def test_unusable_module_exits_2_with_one_clear_line(tmp_path, monkeypatch, capsys, source,
                                                      complaint):
    name = write_module(tmp_path, monkeypatch, source)
    code, out = nnspec_check(capsys, name, "--only", "lstm.cell")
    assert code == 2, out
    assert out.startswith("nnspec check: ") and complaint in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_module_path_that_does_not_exist_exits_2_naming_it(capsys):
    code, out = nnspec_check(capsys, "no_such_package_xyz.my_lstm")
    assert code == 2
    assert "no module named 'no_such_package_xyz'" in out and len(out.strip().splitlines()) == 1


def test_module_providing_no_contract_function_does_not_conform(tmp_path, monkeypatch, capsys):
    name = write_module(tmp_path, monkeypatch, """
        import numpy as np
        DTYPE = np.float64
        def lstmcell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
            return h, c
    """)
    code, out = nnspec_check(capsys, name)
    assert code == 1
    assert "provides none of the contract functions" in out
    assert "lstmcell is not lstm_cell" in out


# ---- outputs the contract does not allow: exit 1, the cause in the first failure line -----------

def test_bad_outputs_and_exceptions_fail_with_their_cause_in_one_line(tmp_path, monkeypatch,
                                                                       capsys):
    name = write_module(tmp_path, monkeypatch, DEFECTS)
    code, out = nnspec_check(capsys, name, "--examples", "1", "--only", "lstm.cell",
                             "activations.tanh", "activations.sigmoid", "--only", "linear.affine")
    assert code == 1, out
    first = {}
    for block in out.split("\nFAIL ")[1:]:
        sid, rest = block.split(":", 1)
        first[sid] = next(line for line in rest.splitlines() if line.startswith("  first failure: "))
    # A check marked with several ids fails all of them.
    assert {"lstm.cell", "activations.tanh", "activations.sigmoid", "linear.affine"} <= set(first)
    assert "lstm_cell() returned shape" in first["lstm.cell"]
    assert "tanh() returned float32 for φ(x) but declares DTYPE = float64" in first[
        "activations.tanh"]
    assert "sigmoid() returned a non-finite value" in first["activations.sigmoid"]
    assert f"{name}.linear() raised ValueError: weights not loaded" in first["linear.affine"]
    assert "Traceback" not in out and f"{name} does not conform: " in out


def test_module_providing_none_of_the_selected_functions_was_not_checked(tmp_path, monkeypatch,
                                                                          capsys):
    name = write_module(tmp_path, monkeypatch, CORRECT_LSTM)
    code, out = nnspec_check(capsys, name, "--only", "gru.cell.pytorch", "--examples", "1")
    assert code == 1, out
    assert "not provided" in out and f"{name} was not checked" in out


# ---- misuse: exit 2 ---------------------------------------------------------------------------

def test_unknown_spec_id_is_refused_with_close_matches(capsys):
    code, out = nnspec_check(capsys, "reference", "--only", "lstm.cel")
    assert code == 2 and "did you mean lstm.cell" in out


def test_ids_without_implementation_checks_are_refused(capsys):
    code, out = nnspec_check(capsys, "reference", "--only", "gru.update.flipped")
    assert code == 2 and "selects no check that calls an implementation" in out


def test_module_swallowed_by_only_is_explained(capsys):
    code, out = nnspec_check(capsys, "--only", "lstm.cell", "reference")
    assert code == 2 and "put MODULE first" in out


def test_tolerance_policy_other_than_strict_is_refused_with_the_reason(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "reference", "--tolerance-policy", "dtype:float32"])
    assert exc.value.code == 2
    assert "declare DTYPE = numpy.float32" in capsys.readouterr().err


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"nnspec {importlib.metadata.version('nnspec')}"


# ---- nnspec check --json -----------------------------------------------------------------------

#: A wrong tanh and a right sigmoid, printing to stdout as modules do (on import, in a call, and
#: on the file descriptor, as a library in C or a worker process would).
NOISY = """
    import os
    import numpy as np
    from nnspec.implementations import reference

    DTYPE = np.float64
    print("loading weights")

    def tanh(x):
        print("tanh called")
        os.write(1, b"raw bytes on file descriptor 1\\n")
        return np.tanh(x) + 1e-3

    def sigmoid(x, alpha=1.0):
        return reference.sigmoid(x, alpha)
"""


def test_json_holds_the_verdicts_failures_and_reproduce_commands_and_nothing_else(
        tmp_path, monkeypatch, capsys):
    name = write_module(tmp_path, monkeypatch, NOISY)
    argv = ["check", name, "--only", "activations.tanh", "activations.sigmoid", "--examples", "2",
            "--seed", "3", "--timeout", "7.5"]
    code, table = nnspec_check(capsys, *argv[1:])
    # In a process of its own, so that writes to file descriptor 1 would reach its stdout.
    done = subprocess.run([sys.executable, "-m", "nnspec", *argv, "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == code == 1, table
    data = json.loads(done.stdout)  # strict: anything else on stdout makes it fail
    # Printed on import, in the worker process, and relayed to stderr, never to stdout (what
    # the checks' calls print, pytest captures).
    assert "loading weights" in done.stderr
    assert (data["schema"], data["module"], data["exit_status"]) == ("nnspec-check/1", name, 1)
    assert (data["seed"], data["examples"], data["timeout"]) == (3, 2, 7.5)
    assert data["provides"] == ["sigmoid", "tanh"] and "does not conform" in data["conclusion"]
    rows = {row["spec_id"]: row for row in data["spec_ids"]}
    assert {row["verdict"] for row in rows.values()} <= {"pass", "fail", "not provided"}
    tanh = rows["activations.tanh"]
    assert tanh["verdict"] == "fail" and tanh["failed"] == len(tanh["failures"]) > 0
    assert "tanh" in tanh["functions"]
    first = tanh["failures"][0]
    assert {"spec_id", "function", "what", "index", "got", "want", "bound", "rule",
            "message"} <= set(first)
    assert first["function"] == "tanh" and first["got"] - first["want"] == pytest.approx(1e-3)
    assert first["message"].split("\n")[0] in table
    command = shlex.split(tanh["reproduce"])
    assert command[command.index("--nnspec-seed"):] == [
        "--nnspec-seed", "3", "--nnspec-examples", "2", "--nnspec-timeout", "7.5"]
    assert shlex.join(command[1:]) in table  # the same command (the interpreter's path aside)


#: One wrong function and one right one, each writing a digest of the inputs it was given to
#: the file named by LOG, so that two runs can be compared input for input.
LOGGING = """
    import hashlib

    import numpy as np
    from nnspec.implementations import reference

    DTYPE = np.float64
    LOG = "{log}"

    def seen(*arrays):
        data = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays if a is not None)
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(hashlib.sha256(data).hexdigest() + "\\n")

    def linear(x, w, b=None):
        seen(x, w, b)
        return reference.linear(x, w, b) + 1e-3

    def sigmoid(x, alpha=1.0):
        seen(x)
        return reference.sigmoid(x, alpha)
"""


@pytest.mark.skipif(not conformance.parallel_available(), reason="pytest-xdist is not installed")
def test_a_parallel_check_gives_the_verdicts_and_the_inputs_of_a_serial_one(tmp_path, monkeypatch):
    log = tmp_path / "inputs.log"
    name = write_module(tmp_path, monkeypatch, LOGGING.format(log=log.as_posix()))

    def check(jobs: str) -> tuple[dict[str, Any], list[str]]:
        log.unlink(missing_ok=True)
        # A process of its own, as a user runs it; --seed 3 seeds Hypothesis' search as well.
        done = subprocess.run([sys.executable, "-m", "nnspec", "check", name, "--json", "--only",
                               "linear.affine", "activations.sigmoid", "--examples", "4",
                               "--seed", "3", "--jobs", jobs],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        data = json.loads(done.stdout)
        assert data["exit_status"] == done.returncode == 1, done.stderr[-3000:]
        assert data.pop("jobs") == int(jobs)
        del data["seconds"]
        return data, sorted(log.read_text(encoding="utf-8").split())

    serial, serial_inputs = check("1")
    parallel, parallel_inputs = check("2")
    rows = {row["spec_id"]: row["verdict"] for row in serial["spec_ids"]}
    assert (rows["linear.affine"], rows["activations.sigmoid"]) == ("fail", "pass")
    assert parallel == serial  # every verdict, count, failure, diagnosis and reproduce command
    assert len(serial_inputs) > 20 and parallel_inputs == serial_inputs


def test_jobs_must_be_a_positive_number_or_auto(capsys):
    for value in ("0", "-2", "many"):
        with pytest.raises(SystemExit) as exit:
            cli.main(["check", "reference", "--jobs", value])
        assert exit.value.code == 2
        assert "neither a positive number of processes nor 'auto'" in capsys.readouterr().err


@pytest.mark.parametrize(("cores", "ids", "jobs"), [(8, 47, 4), (3, 47, 3), (2, 47, 1), (8, 3, 1)])
def test_jobs_auto_runs_in_parallel_only_where_the_workers_start_is_repaid(monkeypatch, cores, ids,
                                                                          jobs):
    monkeypatch.setattr(options.os, "sched_getaffinity", lambda pid: set(range(cores)),
                        raising=False)
    monkeypatch.setattr(conformance, "parallel_available", lambda: True)
    assert options.workers(SimpleNamespace(jobs="auto"), ids, "check") == jobs
    assert options.workers(SimpleNamespace(jobs=2), ids, "check") == 2  # as asked


def test_jobs_without_xdist_runs_serially_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(conformance, "parallel_available", lambda: False)
    code = cli.main(["check", "reference", "--only", "activations.tanh", "--examples", "1",
                     "--no-isolation", "--json", "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["jobs"] == 1
    assert "--jobs 2 needs pytest-xdist, which is not installed" in captured.err
    # --jobs auto asks nothing that is missing: no note.
    assert cli.main(["check", "reference", "--only", "activations.tanh", "--examples", "1",
                     "--no-isolation", "--json"]) == 0
    assert "pytest-xdist" not in capsys.readouterr().err


def test_json_of_an_unusable_module_is_an_error_with_exit_2(capsys):
    code = cli.main(["check", "no_such_package_xyz.my_lstm", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == data["exit_status"] == 2
    assert "no module named 'no_such_package_xyz'" in data["error"]
    assert captured.err.startswith("nnspec check: ") and len(captured.err.splitlines()) == 1


# ---- seeds ------------------------------------------------------------------------------------

RECORDING_TANH = """
    import numpy as np

    DTYPE = np.float64
    SEEN = []

    def tanh(x):
        SEEN.append(np.asarray(x).tobytes())
        return np.tanh(x)
"""


def test_seed_changes_the_hypothesis_search_and_repeats_it(tmp_path, monkeypatch):
    name = write_module(tmp_path, monkeypatch, RECORDING_TANH)
    module = importlib.import_module(name)

    def drawn(seed: int, *extra: str) -> list[bytes]:
        module.SEEN.clear()
        # In this process, so that the module records what the checks fed it.
        result = oracle.check(name, only=["activations.tanh"], examples=3, seed=seed,
                              implementation_only=True,
                              extra_args=["--nnspec-isolation=none", *extra])
        assert result.verdicts["activations.tanh"] == "pass"
        return list(module.SEEN)

    first = drawn(1)
    assert len(first) > 3 and drawn(1) == first
    assert drawn(2) != first
    default = drawn(0)
    assert default != first
    # --hypothesis-seed takes effect although the ci profile is derandomized.
    assert drawn(0, "--hypothesis-seed=5") == drawn(0, "--hypothesis-seed=5") != default


# ---- progress and Ctrl-C ----------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["log", "terminal"])
def test_progress_is_quiet_for_short_runs_then_at_most_every_two_seconds(monkeypatch, stream):
    clock = iter([0.0, 1.0, 3.5, 4.0, 6.0, 6.5])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    shown = progress.Progress(stream, show=True)
    shown.pytest_sessionstart()  # t = 0
    shown.total = 5
    for _ in range(5):  # t = 1, 3.5, 4, 6, 6.5
        shown.pytest_runtest_logfinish()
    shown.pytest_sessionfinish()
    lines = ["nnspec: 2/5 checks, 3.5 s", "nnspec: 4/5 checks, 6.0 s"]
    if isinstance(stream, Terminal):
        width = len(lines[0])
        assert stream.getvalue() == "".join("\r" + line for line in lines) + "\r" + " " * width + "\r"
    else:
        assert stream.getvalue().splitlines() == lines


def test_progress_counts_the_checks_a_parallel_runs_workers_collected():
    # pytest-xdist's controller collects nothing; each worker tells it the node ids it collected.
    shown = progress.Progress(io.StringIO(), show=True)
    shown.pytest_xdist_node_collection_finished(node=None, ids=["a.py::x", "a.py::y"])
    assert shown.total == 2


def test_progress_is_off_when_not_asked_and_not_a_terminal(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    hidden = progress.Progress(stream)
    hidden.pytest_sessionstart()
    hidden.pytest_runtest_logfinish()
    assert stream.getvalue() == "" and hidden.done == 1


INTERRUPTED = """
    import numpy as np

    DTYPE = np.float64

    def tanh(x):
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a call
"""


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_ctrl_c_ends_the_check_in_one_line_with_exit_130(tmp_path, monkeypatch, capsys, as_json):
    name = write_module(tmp_path, monkeypatch, INTERRUPTED)
    code = cli.main(["check", name, "--only", "activations.tanh", "--examples", "1",
                     "--no-isolation", *(["--json"] if as_json else [])])
    captured = capsys.readouterr()
    assert code == 130
    if as_json:
        assert json.loads(captured.out)["error"] == "interrupted"
        assert captured.err.strip() == "nnspec check: interrupted"
    else:
        assert captured.out.splitlines()[-1] == "nnspec check: interrupted"
        assert "KeyboardInterrupt" not in captured.out + captured.err


# ---- nnspec report --impl ---------------------------------------------------------------------

def test_report_of_a_module_that_does_not_import_fails_at_once_in_one_line(tmp_path, capsys):
    code = cli.main(["report", "--impl", "torch,no_such_package_xyz.my_lstm", "--out",
                     str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("nnspec report: cannot import implementation 'no_such_package_xyz.my_lstm'")
    assert not (tmp_path / "reports").exists()


def test_report_imports_a_module_from_the_current_directory(tmp_path, monkeypatch, capsys):
    name = f"user_impl_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(RECORDING_TANH), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command puts the directory on it
    code = cli.main(["report", "--impl", name, "--out", "reports", "--no-bench", "--no-decay",
                     "--no-oracle", "--quiet", "--", "--only", "activations.tanh",
                     "--nnspec-examples", "1"])
    capsys.readouterr()
    assert code == 0
    matrix = json.loads((tmp_path / "reports" / "conformance.json").read_text())["matrix"]
    assert matrix[f"activations.tanh × {name}"]["verdict"] == "pass"


# ---- the seed 004 walk-through (README) -------------------------------------------------------

@needs_examples
def test_seed004_cell_conforms_to_lstm_cell(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPOSITORY))
    code, out = nnspec_check(capsys, "examples.seed004_lstm", "--only", "lstm.cell",
                             "--examples", "3")
    assert code == 0, out
    assert "examples.seed004_lstm conforms: 1 spec id passed" in out


@needs_examples
def test_seed004_cell_without_tanh_fails_and_is_diagnosed(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPOSITORY))
    code, out = nnspec_check(capsys, "examples.seed004_lstm_no_tanh", "--only", "lstm.cell",
                             "--examples", "3")
    assert code == 1, out
    assert "diagnosis: lstm_cell() matches lstm.bug.no_tanh_on_cell" in out, out
    reproduce = next(line for line in out.splitlines() if "reproduce: " in line)
    command = shlex.split(reproduce.split("reproduce: ", 1)[1])
    assert command[1:] == ["-m", "pytest", "--pyargs", "nnspec.checks", "--impl",
                           "examples.seed004_lstm_no_tanh", "--only", "lstm.cell",
                           "--nnspec-seed", "0", "--nnspec-examples", "3"]


@needs_examples
def test_seed004_typo_in_a_mapping_is_caught_when_the_adapter_is_built(monkeypatch):
    monkeypatch.syspath_prepend(str(REPOSITORY))
    from examples.seed004_lstm import MyLSTM, step

    with pytest.raises(ValueError, match=r"names 'w_C\.weight', which MyLSTM does not have"):
        adapters.from_torch_cell(
            lambda D, H: MyLSTM(D, H, 1), kind="lstm", call=step,
            mapping=adapters.linear_per_gate({"i": "w_i", "f": "w_f", "g": "w_C", "o": "w_o"},
                                             order="xh"))


# ---- adapters ---------------------------------------------------------------------------------

def lstm_problem(rng: np.random.Generator, B: int = 3, D: int = 4, H: int = 5, blocks: int = 4):
    return (rng.standard_normal((B, D)), rng.standard_normal((B, H)),
            rng.standard_normal((B, H)), rng.standard_normal((blocks * H, D)),
            rng.standard_normal((blocks * H, H)), rng.standard_normal(blocks * H),
            rng.standard_normal(blocks * H))


class Elman(nn.Module):
    """Seed 001's h_t = φ(W h_{t−1} + U x_t + b), one bias, its own parameter names."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.U = nn.Parameter(torch.zeros(hidden_size, input_size))
        self.W = nn.Parameter(torch.zeros(hidden_size, hidden_size))
        self.b = nn.Parameter(torch.zeros(hidden_size))
        self.phi = torch.tanh if nonlinearity == "tanh" else torch.relu

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.phi(h @ self.W.T + x @ self.U.T + self.b)


def test_torch_cell_with_own_names_computes_the_reference_forward_and_gradients(rng):
    elman = adapters.from_torch_cell(
        Elman, kind="rnn", mapping=lambda p: {"U": p.w_ih, "W": p.w_hh, "b": p.b_ih + p.b_hh})
    x, h, _, w_ih, w_hh, _, b_hh = lstm_problem(rng, blocks=1)
    for phi in ("tanh", "relu"):
        np.testing.assert_allclose(elman.rnn_cell(x, h, w_ih, w_hh, None, b_hh, nonlinearity=phi),
                                   ref_rnn.rnn_cell(x, h, w_ih, w_hh, None, b_hh, phi),
                                   rtol=1e-12, atol=1e-13)
        g = rng.standard_normal(h.shape)
        got = elman.vjp_rnn_cell(g, x, h, w_ih, w_hh, None, b_hh, nonlinearity=phi)
        want = ref_rnn.rnn_cell_vjp(g, x, h, w_ih, w_hh, None, b_hh, phi)
        assert got[4] is None and want[4] is None
        for k in (0, 1, 2, 3, 5):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-11, atol=1e-12)


def test_torch_cell_renamed_parameters_compute_the_reference(rng):
    class Wrapped(nn.Module):
        def __init__(self, input_size: int, hidden_size: int) -> None:
            super().__init__()
            self.core = nn.GRUCell(input_size, hidden_size)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return self.core(x, h)

    gru = adapters.from_torch_cell(Wrapped, kind="gru", mapping={
        "w_ih": "core.weight_ih", "w_hh": "core.weight_hh", "b_ih": "core.bias_ih",
        "b_hh": "core.bias_hh"})
    x, h, _, w_ih, w_hh, b_ih, _ = lstm_problem(rng, blocks=3)
    np.testing.assert_allclose(gru.gru_cell(x, h, w_ih, w_hh, b_ih),
                               ref_gru.gru_cell(x, h, w_ih, w_hh, b_ih), rtol=1e-12, atol=1e-13)
    dx, dh, dw_ih, dw_hh, db_ih, db_hh = gru.vjp_gru_cell(np.ones_like(h), x, h, w_ih, w_hh, b_ih)
    want = ref_gru.gru_cell_vjp(np.ones_like(h), x, h, w_ih, w_hh, b_ih)
    for got, w in zip((dx, dh, dw_ih, dw_hh, db_ih), want, strict=False):
        np.testing.assert_allclose(got, w, rtol=1e-11, atol=1e-12)
    assert db_hh is None and want[5] is None


@pytest.mark.parametrize(("kwargs", "complaint"), [
    ({"kind": "lstn"}, "kind must be one of"),
    ({"kind": "lstm", "variant": "textbook"}, "variant applies to kind='gru' only"),
    ({"kind": "lstm", "dtype": np.int64}, "dtype must be float32 or float64"),
    ({"kind": "lstm", "mapping": {"weight": "weight_ih"}}, "mapping keys must be among"),
])
def test_adapter_rejects_bad_arguments_naming_them(kwargs, complaint):
    with pytest.raises(ValueError, match=complaint):
        adapters.from_torch_cell(nn.LSTMCell, **kwargs)


def test_linear_per_gate_rejects_a_wrong_order():
    with pytest.raises(ValueError, match="order must be 'hx'"):
        adapters.linear_per_gate({"h": "lin"}, order="x,h")


def test_concatenated_lstm_of_seed_002_computes_the_cell_forward_only(rng):
    def seed002(x, h, c, weights):
        q = ref_lstm.ConcatParams(*weights["f"], *weights["i"], *weights["g"], *weights["o"])
        return ref_lstm.cell_concatenated(x, h, c, q)

    module = adapters.from_concatenated(seed002, kind="lstm", order="hx")
    assert module.__all__ == ["DTYPE", "lstm_cell"]
    x, h, c, w_ih, w_hh, b_ih, b_hh = lstm_problem(rng)
    for got, want in zip(module.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh),
                         ref_lstm.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_concatenated_gru_is_checked_as_the_textbook_variant(rng):
    def textbook(x, h, weights):
        (W_r, b_r), (W_z, b_z), (W_n, b_n) = weights["r"], weights["z"], weights["n"]
        sigmoid = ref_gru.sigmoid
        r = sigmoid(np.concatenate([x, h], axis=1) @ W_r.T + b_r)
        z = sigmoid(np.concatenate([x, h], axis=1) @ W_z.T + b_z)
        n = np.tanh(np.concatenate([x, r * h], axis=1) @ W_n.T + b_n)
        return (1 - z) * n + z * h

    module = adapters.from_concatenated(textbook, kind="gru", order="xh")
    x, h, _, w_ih, w_hh, b_ih, b_hh = lstm_problem(rng, blocks=3)
    np.testing.assert_allclose(module.gru_cell_textbook(x, h, w_ih, w_hh, b_ih, b_hh),
                               ref_gru.gru_cell_textbook(x, h, w_ih, w_hh, b_ih, b_hh),
                               rtol=1e-12, atol=1e-13)


def stand_in_jax(*, x64: bool) -> types.ModuleType:
    """Enough of JAX's API for from_jax, on torch (JAX is not a dependency): jax.numpy.asarray
    and the ops below, and jax.vjp as torch.func.vjp. Without x64, asarray rounds to float32, as
    JAX does by default."""
    jax: Any = types.ModuleType("jax")

    def asarray(a, dtype=None):
        a = np.asarray(a, dtype=dtype)
        return torch.as_tensor(a if x64 or a.dtype.kind != "f" else a.astype(np.float32))

    jax.numpy = SimpleNamespace(asarray=asarray, exp=torch.exp, tanh=torch.tanh)
    jax.vjp = torch.func.vjp
    return jax


def jax_lstm_cell(jnp):
    """An LSTM cell written against jax.numpy (or the stand-in's few functions)."""

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        H = h.shape[1]
        A = x @ w_ih.T + h @ w_hh.T + b_ih + b_hh
        i, f, g, o = (A[:, k * H:(k + 1) * H] for k in range(4))

        def sigmoid(a):
            return 1 / (1 + jnp.exp(-a))

        c_new = sigmoid(f) * c + sigmoid(i) * jnp.tanh(g)
        return sigmoid(o) * jnp.tanh(c_new), c_new

    return lstm_cell


@pytest.fixture(params=["stand-in", "jax"])
def jax_module(request, monkeypatch):
    if request.param == "jax":
        jax = pytest.importorskip("jax", reason="JAX is not installed; the stand-in covers the "
                                                "adapter's logic")
        jax.config.update("jax_enable_x64", True)
        return jax
    jax = stand_in_jax(x64=True)
    monkeypatch.setitem(sys.modules, "jax", jax)
    return jax


def test_jax_function_computes_the_reference_forward_and_gradients(jax_module, rng):
    module = adapters.from_jax(jax_lstm_cell(jax_module.numpy), kind="lstm", dtype=np.float64)
    x, h, c, w_ih, w_hh, b_ih, _ = lstm_problem(rng)
    for got, want in zip(module.lstm_cell(x, h, c, w_ih, w_hh, b_ih),
                         ref_lstm.lstm_cell(x, h, c, w_ih, w_hh, b_ih), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    g = (rng.standard_normal(h.shape), rng.standard_normal(c.shape))
    got = module.vjp_lstm_cell(g, x, h, c, w_ih, w_hh, b_ih)
    want = ref_lstm.lstm_cell_vjp(g, x, h, c, w_ih, w_hh, b_ih)
    assert got[-1] is None and want[-1] is None
    for got_i, want_i in zip(got[:-1], want[:-1], strict=True):
        np.testing.assert_allclose(got_i, want_i, rtol=1e-11, atol=1e-12)


def test_jax_in_float64_without_x64_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", stand_in_jax(x64=False))
    with pytest.raises(ValueError, match="jax_enable_x64"):
        adapters.from_jax(lambda *a: a, kind="gru", dtype=np.float64)


def test_jax_adapter_without_jax_says_it_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    with pytest.raises(ImportError, match="from_jax needs JAX, which is not installed"):
        adapters.from_jax(lambda *a: a, kind="gru")


def test_rnn_reference_through_from_concatenated_matches(rng):
    def elman(x, h, weights, nonlinearity):
        W, b = weights["h"]
        a = np.concatenate([h, x], axis=1) @ W.T + b
        return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)

    module = adapters.from_concatenated(elman, kind="rnn")
    x, h, _, w_ih, w_hh, b_ih, b_hh = lstm_problem(rng, blocks=1)
    for phi in ("tanh", "relu"):
        np.testing.assert_allclose(module.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity=phi),
                                   ref_rnn.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, phi),
                                   rtol=1e-12, atol=1e-13)


# ---- the pytest plugin ------------------------------------------------------------------------

@pytest.mark.skipif(not (REPOSITORY / "pyproject.toml").is_file(),
                    reason="pyproject.toml exists in a repository checkout only")
def test_plugin_settings_equal_pyproject_ini_options():
    ini = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
    options = ini["tool"]["pytest"]["ini_options"]
    for name, lines in pytest_plugin.INI.items():
        assert options[name] == lines, name
    addopts = shlex.split(options["addopts"])
    assert all(opt in addopts for opt in pytest_plugin.ADDOPTS), addopts
    assert addopts[addopts.index("-m") + 1] == pytest_plugin.ADDOPTS[-1] == "not slow"


def test_checks_run_with_pyargs_from_any_directory(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "nnspec.checks.test_linear", "--impl",
         "reference", "--only", "linear.affine", "--nnspec-examples", "2", "-q", "-p",
         "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_example_database_goes_where_it_is_asked_and_only_for_a_random_search(
        tmp_path, monkeypatch):
    name = write_module(tmp_path, monkeypatch, LOGGING.format(log=(tmp_path / "log").as_posix()))
    database = tmp_path / "shared" / "examples"

    def pytest_run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "nnspec.checks.test_linear", "--impl", name,
             "--only", "linear.affine", "--nnspec-examples", "3", "-q", "-p", "no:cacheprovider",
             "--nnspec-database", str(database), *extra],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)

    refused = pytest_run()  # the ci profile's search is derandomized: nothing to keep
    assert refused.returncode == 4 and "--nnspec-database needs a random search" in refused.stderr
    done = pytest_run("--hypothesis-profile=thorough")
    assert done.returncode == 1, done.stdout[-3000:]
    assert any(path.is_file() for path in database.rglob("*"))  # the failing examples, kept


def test_the_summary_shows_a_later_failures_diagnosis_where_the_first_names_nothing():
    # A float64-declared linear computing in float32: Hypothesis' shrunk 1×1 call is too small
    # to tell float32 rounding and matches nothing, while a stored vector of the same id names it.
    # The block and the table's note showed only the first failure's "matches nothing".
    from nnspec import oracle, speclib, verdicts
    from nnspec.reference.linear import affine

    def linear(x, w, b=None):
        f32 = [None if a is None else np.asarray(a, dtype=np.float32) for a in (x, w, b)]
        return np.asarray(affine(*f32), dtype=np.float32).astype(np.float64)

    module = types.ModuleType(f"float32_linear_{uuid.uuid4().hex[:8]}")
    module.DTYPE, module.linear = np.float64, linear
    result = oracle.check(module, only=["linear.affine"], examples=5, implementation_only=True)
    cell = result.conformance.cells[("linear.affine", result.implementation)]
    assert cell.failures and verdicts.lead(cell.failures) is not cell.failures[0], \
        "the first failure names float32 itself now: this test no longer shows the fallback"
    block = "\n".join(verdicts.failure_block(result, "linear.affine", "reproduce"))
    assert "  where: lower precision: float32 (confidence high" in block, block
    row = next(r for r in verdicts.table(result, list(speclib.load())) if r.startswith("linear."))
    assert "see below (lower precision: float32)" in row, row
