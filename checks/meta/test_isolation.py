"""The implementation under test is contained: a hang, an exit, a crash or a write into its
arguments becomes a failure naming the function (checks/harness/isolation.py, mutation.py), and
never ends, hangs or passes the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnspec.checks.harness.implementation import (
    Implementation,
    ImplementationError,
    ImplementationLoadError,
    load,
)

HEADER = """
import ctypes, os, sys, time
import numpy as np
from scipy.special import expit
DTYPE = np.float64
"""

#: Modules that misbehave in one way each, in sigmoid(); "fine" is the control.
BODIES = {
    "fine": "return expit(alpha * x)",
    "hang": "while True: time.sleep(0.01)",
    "spin": "while True: pass",
    "exit0": "os._exit(0)",
    "sys_exit": "sys.exit(0)",
    "segfault": "ctypes.string_at(0)",
    "abort": "os.abort()",
    "zeroes_x": "x[...] = 0\n    return expit(alpha * x)",
    "returns_a_lambda": "return lambda: x",
}


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One importable module per entry of :data:`BODIES` (``probe_<kind>``), in a fresh folder."""
    for kind, body in BODIES.items():
        (tmp_path / f"probe_{kind}.py").write_text(
            HEADER + f"def sigmoid(x, alpha=1.0):\n    {body}\n")
    (tmp_path / "probe_exits_on_import.py").write_text(HEADER + "os._exit(0)\n")
    (tmp_path / "probe_params.py").write_text(HEADER + textwrap.dedent("""
        def clip_grad_value(grads, clip_value):
            grads[1][0] = 7.0
            return [np.clip(g, -clip_value, clip_value) for g in grads]

        def dropout(x, p, training, rng):
            return x * (rng.random(x.shape) >= p) / (1 - p)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _call(impl: Implementation, fn: str = "sigmoid", *args: object) -> str:
    with pytest.raises(ImplementationError) as info:
        impl.call(fn, *(args or (np.array([0.5, -1.0]),)))
    failure = info.value.failure
    assert failure.function == fn and failure.implementation == impl.name
    return failure.message


@pytest.mark.parametrize(("kind", "says"), [
    ("hang", "probe_hang.sigmoid() did not return within 1 s (the per-call time limit"),
    ("exit0", "probe_exit0.sigmoid() ended the process running it: exit status 0"),
    ("segfault", "probe_segfault.sigmoid() ended the process running it: a segmentation fault (SIGSEGV)"),
    ("abort", "probe_abort.sigmoid() ended the process running it: an abort (SIGABRT)"),
    ("sys_exit", "probe_sys_exit.sigmoid() called sys.exit(0): a contract function must return"),
    ("zeroes_x", "probe_zeroes_x.sigmoid() wrote into its argument x (2 of 2 elements changed, first "
                 "at index (0,): 0.5 → 0.0)"),
    ("returns_a_lambda", "probe_returns_a_lambda.sigmoid() returned function, which cannot be sent back"),
])
def test_a_worker_turns_what_the_implementation_does_into_a_failure_naming_it(modules, kind, says):
    impl = load(f"probe_{kind}", isolation="process", timeout=1.0)
    try:
        assert impl.isolated
        assert says in _call(impl)
    finally:
        impl.close()


def test_a_crash_names_the_line_of_the_implementation(modules):
    impl = load("probe_abort", isolation="process", timeout=5.0)
    try:
        assert f'at "{modules / "probe_abort.py"}", line 7 in sigmoid' in _call(impl)
    finally:
        impl.close()


def test_a_stopped_function_is_not_called_again(modules, monkeypatch):
    impl = load("probe_hang", isolation="process", timeout=1.0)
    try:
        first = _call(impl)
        assert impl.backend is not None
        calls = []
        monkeypatch.setattr(impl.backend, "call", lambda *args: calls.append(args))
        # Shrinking a failing example calls it again and again: each would wait the whole limit.
        assert _call(impl) == first and not calls
    finally:
        impl.close()


def test_after_a_crash_the_next_function_gets_a_new_worker(modules):
    impl = load("probe_params", isolation="process")
    try:
        impl.backend.process.kill()  # type: ignore[union-attr]
        assert "ended the process running it" in _call(impl, "clip_grad_value", [np.zeros(1)], 1.0)
        out = impl.call("dropout", np.ones(4), 0.0, True, np.random.default_rng(0))
        np.testing.assert_array_equal(out, np.ones(4))
    finally:
        impl.close()


def test_the_control_module_passes_through_the_worker(modules):
    impl = load("probe_fine", isolation="process")
    try:
        x = np.array([0.0, 2.0])
        np.testing.assert_array_equal(impl.call("sigmoid", x), 1 / (1 + np.exp(-x)))
        assert impl.called == {"sigmoid"}
    finally:
        impl.close()


def test_in_process_a_pure_python_hang_is_stopped_by_the_timer(modules):
    impl = load("probe_spin", isolation="none", timeout=0.5)
    assert not impl.isolated
    assert "probe_spin.sigmoid() did not return within 0.5 s" in _call(impl)


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_writes_into_arguments_inside_a_list_are_named(modules, isolation):
    impl = load("probe_params", isolation=isolation)
    try:
        message = _call(impl, "clip_grad_value", [np.zeros(2), np.zeros(3)], 1.0)
        assert message.startswith("probe_params.clip_grad_value() wrote into its argument grads[1] "
                                  "(1 of 3 elements")
    finally:
        impl.close()


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_generators_advance_in_the_caller_as_if_called_in_process(modules, isolation):
    impl = load("probe_params", isolation=isolation)
    try:
        rng, twin = np.random.default_rng(5), np.random.default_rng(5)
        x = np.ones(1000)
        first, second = (impl.call("dropout", x, 0.5, True, rng) for _ in range(2))
        assert not np.array_equal(first, second)  # the second call drew fresh numbers
        twin.random(1000)
        twin.random(1000)
        assert rng.bit_generator.state == twin.bit_generator.state
    finally:
        impl.close()


def test_a_module_that_ends_its_process_on_import_is_a_load_error(modules):
    with pytest.raises(ImplementationLoadError, match="importing 'probe_exits_on_import' ended the "
                                                     "process running it: exit status 0"):
        load("probe_exits_on_import", isolation="process")


def test_a_worker_reports_a_missing_module_as_in_process(modules):
    messages = []
    for isolation in ("process", "none"):
        with pytest.raises(ImplementationLoadError) as info:
            load("probe_no_such_module", isolation=isolation)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "no module named 'probe_no_such_module'" in messages[0]


def test_nnspec_check_of_a_module_that_calls_os_exit_fails_with_one_line(modules):
    run = subprocess.run([sys.executable, "-m", "nnspec", "check", "probe_exit0", "--only",
                          "activations.sigmoid"], capture_output=True, text=True, cwd=modules,
                         timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "activations.sigmoid" in run.stdout and "FAIL" in run.stdout
    assert "probe_exit0.sigmoid() ended the process running it: exit status 0" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


EXTRA = {
    # An output whose unpickling would end the checks' process, and one of the module's own class.
    "probe_reduce": """
        class Exit:
            def __reduce__(self):
                return (os._exit, (0,))

        def sigmoid(x, alpha=1.0):
            return Exit()
        """,
    "probe_subclass": """
        class Mine(np.ndarray):
            pass

        def sigmoid(x, alpha=1.0):
            return expit(alpha * x).view(Mine)
        """,
    # Functions provided through a module-level __getattr__ (PEP 562).
    "probe_lazy": """
        def __getattr__(name):
            if name == "sigmoid":
                return lambda x, alpha=1.0: expit(alpha * x)
            raise AttributeError(name)
        """,
    # Writes into a transposed (not C-contiguous) argument.
    "probe_linear": """
        def linear(x, w, b=None):
            w[0, 0] = 5.0
            return x @ w.T
        """,
    # Dropout that draws through a spawned child generator.
    "probe_spawn": """
        def dropout(x, p, training, rng):
            child = rng.spawn(1)[0]
            return x * (child.random(x.shape) >= p) / (1 - p)
        """,
    # Imports once: a second import (a worker restarted after sigmoid ends it) fails.
    "probe_once": """
        import pathlib
        _mark = pathlib.Path(__file__).with_suffix(".imported")
        if _mark.exists():
            raise RuntimeError("imported twice")
        _mark.write_text("")

        def sigmoid(x, alpha=1.0):
            os._exit(3)

        def tanh(x):
            return np.tanh(x)
        """,
}


@pytest.fixture
def extra(modules: Path) -> Path:
    for name, body in EXTRA.items():
        (modules / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
    return modules


def test_an_output_is_read_back_as_plain_data_only(extra):
    impl = load("probe_reduce", isolation="process")
    try:
        # Unpickled here, its __reduce__ would have ended this process with status 0.
        assert "probe_reduce.sigmoid() returned Exit, which cannot be sent back" in _call(impl)
    finally:
        impl.close()
    impl = load("probe_subclass", isolation="process")
    try:
        out = impl.call("sigmoid", np.array([0.0]))
        assert type(out) is np.ndarray and out[0] == 0.5  # the module's class is never imported here
    finally:
        impl.close()


def test_functions_of_a_module_getattr_are_provided_in_the_worker(extra):
    impl = load("probe_lazy", isolation="process")
    try:
        assert impl.provides("sigmoid") and impl.call("sigmoid", np.array([0.0]))[0] == 0.5
    finally:
        impl.close()


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_a_write_into_a_transposed_argument_is_named(extra, isolation):
    impl = load("probe_linear", isolation=isolation)
    try:
        w = np.asfortranarray(np.ones((2, 3)))
        message = _call(impl, "linear", np.ones((1, 3)), w)
        assert message.startswith("probe_linear.linear() wrote into its argument w (1 of 6 elements")
    finally:
        impl.close()


def test_spawned_generators_advance_in_the_caller_too(extra):
    draws = {}
    for isolation in ("process", "none"):
        impl = load("probe_spawn", isolation=isolation)
        try:
            rng = np.random.default_rng(11)
            draws[isolation] = [impl.call("dropout", np.ones(64), 0.5, True, rng) for _ in range(2)]
        finally:
            impl.close()
    np.testing.assert_array_equal(draws["process"], draws["none"])
    assert not np.array_equal(*draws["process"])  # the second call spawned a new child


def test_a_worker_that_cannot_start_again_fails_the_next_call_in_one_line(extra):
    impl = load("probe_once", isolation="process")
    try:
        assert "ended the process running it: exit status 3" in _call(impl)
        message = _call(impl, "tanh")
        assert "could not be called: the worker did not start again" in message
        assert "imported twice" in message and "\n  called with" in message
    finally:
        impl.close()
