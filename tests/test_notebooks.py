"""Every notebook runs top to bottom in a fresh kernel on tiny data; the committed ones stay small.

The kernel is this interpreter's (a kernel spec written for `sys.executable`), whatever
`python3` kernel spec the machine has installed, and `KERAS_RECAE_SMALL=1` makes each
notebook train for a few epochs on tiny synthetic data. Any cell error fails the test.
"""

import base64
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
# Seconds per cell: a tiny run takes well under a minute, even on a loaded machine.
CELL_TIMEOUT = 600
MAX_NOTEBOOK_BYTES = 1_500_000
MAX_STREAM_LINES = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(root / "python3")
    specs = KernelSpecManager(kernel_dirs=[str(root)])
    assert specs.get_kernel_spec("python3").argv[0] == sys.executable
    return specs


def test_notebooks_are_there():
    expected = {
        "01_quickstart_mult_vae",
        "02_explicit_autorec",
        "03_recvae_and_friends",
        "04_refine_word2vec",
        "05_serve",
        "06_runner_and_tuner",
    }
    assert expected <= {path.stem for path in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebook_runs_on_small_data(path, kernel_specs, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_RECAE_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # The notebooks' temporary files land in pytest's temporary directory.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for name in ("KERAS_RECAE_MOVIELENS", "KERAS_RECAE_ML100K", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        km=KernelManager(kernel_name="python3", kernel_spec_manager=kernel_specs),
        timeout=CELL_TIMEOUT,
        startup_timeout=180,
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # Raises CellExecutionError, naming the cell and the error, when a cell fails.
    client.execute()

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    # The first cell reads the switch before anything else: it prints what it found.
    assert "small=True" in "".join(
        output.get("text", "") for output in code_cells[0].outputs if output.output_type == "stream"
    )
    plotted = [output for output in outputs if "image/png" in output.get("data", {})]
    if "plt.show()" in "".join(cell.source for cell in code_cells):
        assert plotted, f"{path.name}: no figure came out as a PNG"


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_committed_outputs_are_small(path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{path.name}: a committed cell failed"
            if output.output_type == "stream":
                assert output.text.count("\n") <= MAX_STREAM_LINES, f"{path.name}: long log"
                assert "absl::InitializeLog" not in output.text, f"{path.name}: TensorFlow noise"
            data = output.get("data", {})
            # Figures as PNG only, not also as SVG or PDF.
            assert not {"image/svg+xml", "application/pdf"} & set(data), path.name
            if "image/png" in data:
                assert base64.b64decode(data["image/png"]).startswith(PNG_SIGNATURE)
