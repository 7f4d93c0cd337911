"""Executes notebooks in place at their normal size, for the outputs that are committed.

    python notebooks/execute.py                 # every notebook
    python notebooks/execute.py 01 05           # those whose name starts so

Each notebook runs top to bottom in a fresh kernel of this interpreter, from the notebooks
directory, without `KERAS_RECAE_SMALL`, and is written back with its outputs. TensorFlow's
start-up lines, which it prints to stderr before its logging is set up (so
`TF_CPP_MIN_LOG_LEVEL` cannot silence them), are removed from the outputs.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\] .*"
    r"|To enable the following instructions: .*rebuild TensorFlow.*)\n?",
    re.MULTILINE,
)
# Variables that would change what the notebooks read or how big they run.
DATA_VARIABLES = ("KERAS_RECAE_SMALL", "KERAS_RECAE_MOVIELENS", "KERAS_RECAE_ML100K")


def kernel_manager(spec_root: Path) -> KernelManager:
    """A kernel of this interpreter, whatever `python3` kernel spec is installed."""
    if not (spec_root / "python3").exists():
        write_kernel_spec(spec_root / "python3")
    specs = KernelSpecManager(kernel_dirs=[str(spec_root)])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def strip_noise(notebook) -> None:
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                output.text = NOISE.sub("", output.text)
                if not output.text.strip():
                    continue
            kept.append(output)
        cell.outputs = kept


def execute(path: Path, spec_root: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    client = NotebookClient(
        notebook,
        km=kernel_manager(spec_root),
        timeout=1800,
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()
    strip_noise(notebook)
    temporary = path.with_name(f".{path.name}.tmp")
    nbformat.write(notebook, temporary)
    os.replace(temporary, path)
    return time.perf_counter() - started


def main(prefixes: list[str]) -> None:
    for name in DATA_VARIABLES:
        os.environ.pop(name, None)
    paths = sorted(HERE.glob("*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in prefixes)]
    with tempfile.TemporaryDirectory() as spec_root:
        for path in paths:
            seconds = execute(path, Path(spec_root))
            print(f"{path.name}: {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
