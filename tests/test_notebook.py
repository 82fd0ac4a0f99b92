"""The example notebook (samples/notebooks/incidents.ipynb) runs clean in a real Jupyter kernel.

The kernel imports the checkout's pcapsleuth (PYTHONPATH), runs every cell inside its own running
event loop, as Jupyter does, and must produce no error and nothing on stderr (no warnings). The
committed file carries no outputs, so it stays small and diffs stay readable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO, SAMPLES

NOTEBOOK = SAMPLES / "notebooks" / "incidents.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    home = tmp_path_factory.mktemp("kernel")
    # The checkout's pcapsleuth (a stale installed copy must not answer), a private IPython profile.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               IPYTHONDIR=str(home / "ipython"))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)
    return nb


def outputs(nb: Any) -> list[tuple[int, Any]]:
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code" for out in cell.outputs]


def test_the_notebook_runs_clean(executed: Any) -> None:
    errors = [(i, o.ename, o.evalue) for i, o in outputs(executed) if o.output_type == "error"]
    assert errors == []
    stderr = [(i, o.text) for i, o in outputs(executed) if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == []
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells)


def test_the_notebook_walks_through_both_incidents(executed: Any) -> None:
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                     for _, o in outputs(executed))
    html = "\n".join(str(o.get("data", {}).get("text/html", "")) for _, o in outputs(executed))
    for finding_id in ("handshake.conflicting_replies", "reuse.peer_in_close_wait", "close.close_wait_leak"):
        assert finding_id in text or finding_id in html, finding_id
    assert "<Analysis 3 captures (lb-client, lb-balancer, lb-backend)" in text
    assert "02:00:0a:ca:00:02" in text and "02:00:0a:ca:00:03" in text  # the two MACs behind one address
    assert "CLOSE-WAIT" in text + html
    images = [o for _, o in outputs(executed) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # ladders and a timeline, drawn as images in the notebook
    for name in ("lb-client.pcap", "lb-backend.pcap", "closewait-reuse.pcap", "closewait-minefield.pcap"):
        assert name in "".join(c.source for c in executed.cells), name


def test_the_committed_notebook_has_no_outputs_and_is_small() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert Path(NOTEBOOK).stat().st_size < 1_000_000
    assert nb.metadata.kernelspec.name == "python3"
