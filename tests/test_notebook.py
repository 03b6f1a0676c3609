"""Every notebook in apps/ runs top to bottom in a fresh kernel and prints what its text promises."""
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
# A stylesheet on a CDN fails offline: the page's CSS must come inline or from the Jupyter server.
CDN_STYLESHEET = re.compile(r"https?://(?:cdn\.holoviz\.org|cdn\.bokeh\.org|unpkg\.com|cdn\.jsdelivr\.net)/[^\s\"'\\]*\.css")

# What each notebook's headless cells must print (regular expressions over all its printed text).
EXPECTED = {
    "continuity": [r"'iteration': 50", r"L =  4", r"L = 32"],
    "classifier": [r"after 120 iterations: accuracy on all points (9[5-9]|100)\.\d%", r"circles, augment=1: accuracy"],
    "figure3": [r"tol 1e-08: NFE +\d+, error \d", r"128 RK4 steps: through the solver +\d+ KiB, adjoint +[\d.]+ KiB"],
    "cnf": [r"held-out NLL cnf +\d\.\d{3} nats", r"samples \(500, 2\), mean log p of the samples -?\d"],
    "latent": [r"after 150 iterations: test RMSE latent ODE \d\.\d{3}, RNN \d\.\d{3}",
               r"30 -> 5 observations: the prediction moved by up to \d"],
    "table1": [r"1-layer MLP +test error +\d\.\d\d %", r"ODE-Net +test error +\d\.\d\d %"],
}


def test_every_notebook_is_checked():
    assert sorted(path.stem for path in (ROOT / "apps").glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_headless(name):
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.fail("no 'python3' Jupyter kernelspec: run `python -m ipykernel install --user`")
    notebook = nbformat.read(ROOT / "apps" / f"{name}.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "the notebook is stored with outputs"
    # Raises CellExecutionError (naming the cell and the traceback) if any cell fails.
    NotebookClient(notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}}).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[1].outputs, "the page cell shows no output"
    assert CDN_STYLESHEET.findall(nbformat.writes(notebook)) == [], "the rendered page loads CSS from a CDN"
    printed = "".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "") for cell in code for output in cell.outputs
    )
    for pattern in EXPECTED[name]:
        assert re.search(pattern, printed), f"{pattern!r} not in:\n{printed}"
