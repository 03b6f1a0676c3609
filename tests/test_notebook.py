"""apps/continuity.ipynb runs top to bottom in a fresh kernel without an error."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "apps" / "continuity.ipynb"


def test_continuity_notebook_runs_headless():
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.fail("no 'python3' Jupyter kernelspec: run `python -m ipykernel install --user`")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "the notebook is stored with outputs"
    # Raises CellExecutionError (naming the cell and the traceback) if any cell fails.
    NotebookClient(notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}}).execute()

    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    page_output, last_row, depth_lines = outputs[1], outputs[2], outputs[3]
    assert page_output, "the page cell shows no output"
    assert "'iteration': 50" in last_row[0]["data"]["text/plain"]
    printed = "".join(output.get("text", "") for output in depth_lines)
    assert "L =  4" in printed and "L = 32" in printed, printed
