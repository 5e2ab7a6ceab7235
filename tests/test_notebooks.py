"""The example notebooks (examples/*.ipynb), executed headless with nbclient on an ipykernel of this
interpreter, against the running kernel, as a user would run them top to bottom.

Each notebook checks its own numbers against the workload it starts (``assert`` cells: an
assertion that fails is an error cell); these tests check what the notebooks showed: no error
cells, a PNG for each plot, an SVG for each flame graph (parsed as XML, holding the workload's
function names), HTML for each object and table shown, the live view's last redraw, and the
counts printed. One notebook is then rendered to HTML and photographed with headless Chromium,
as a reader would see it (the PNG is kept in the test's directory; set
``BPFKIT_NOTEBOOK_PICTURES=DIR`` to keep copies there, as the README's pictures were made)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbclient
import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PYTHON_DIR = Path(__file__).resolve().parent.parent / "python"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec that starts ipykernel with this interpreter (whatever ``python3`` is on PATH),
    found through ``JUPYTER_PATH``; the kernel inherits this process's environment."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "bpfkit-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bpfkit test", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root) + (os.pathsep + old if old else "")
    # The kernel runs in the test's directory: a relative PYTHONPATH (PYTHONPATH=python) must not
    # turn into a different bpfkit there.
    if os.environ.get("PYTHONPATH"):
        os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep))
    yield "bpfkit-test"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def execute(name: str, kernel_name: str, tmp_path: Path):
    """The notebook ``examples/NAME.ipynb``, executed in ``tmp_path``; fails with the first error
    cell's traceback."""
    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=60, allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / f"{name}.ipynb")  # the executed notebook, kept with the test
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", (
                f"cell {i} of {name}.ipynb failed:\n{cell.source}\n\n" + "\n".join(out.get("traceback", [])))
    return nb


def outputs(cell) -> list:
    return cell.get("outputs", [])


def text_of(cell) -> str:
    """Everything a cell printed or showed as text."""
    parts = []
    for out in outputs(cell):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def cell_with(nb, source_part: str):
    """The code cell whose source contains ``source_part`` (exactly one)."""
    found = [c for c in nb.cells if c.cell_type == "code" and source_part in c.source]
    assert len(found) == 1, (source_part, [c.source[:40] for c in found])
    return found[0]


def cell_exactly(nb, source: str):
    """The code cell whose whole source is ``source`` (the first)."""
    return next(c for c in nb.cells if c.cell_type == "code" and c.source == source)


def mime(cell, kind: str) -> list:
    return [out["data"][kind] for out in outputs(cell) if kind in out.get("data", {})]


def test_latency_notebook(kernel_name: str, tmp_path: Path):
    nb = execute("latency", kernel_name, tmp_path)
    # The object shown by itself: its programs and maps.
    (html,) = mime(cell_exactly(nb, "lat"), "text/html")
    for word in ("sys_enter_clock_nanosleep", "sys_exit_clock_nanosleep", "dist", "start", "target"):
        assert word in html, word
    # The live view's last redraw: the histogram holds the workload's 30 sleeps, as the
    # DataFrame made after it does (the notebook checks the buckets against the sleeps).
    watch = text_of(cell_with(nb, "%bpf_watch"))
    rows = {int(lo): int(n) for lo, n in re.findall(r"^\s*(\d+) -> \d+\s*: (\d+)", watch, re.M)}
    assert sum(rows.values()) == 30, watch
    frame = text_of(cell_with(nb, "df = lat"))
    assert {int(lo): int(n) for lo, n in re.findall(r"^\d+\s+(\d+)\s+\d+\s+(\d+)$", frame, re.M)} == \
        {lo: n for lo, n in rows.items() if n}, (watch, frame)
    # The plot: one PNG.
    (png,) = mime(cell_with(nb, ".plot("), "image/png")
    assert len(png) > 1000
    assert re.search(r"^30 sleeps; \d+ of the 20 of 1\.5 ms", text_of(cell_with(nb, "assert df[")), re.M)


def test_profile_notebook(kernel_name: str, tmp_path: Path):
    if not shutil.which("cc"):
        pytest.fail("the profile notebook builds its workload with cc (make deps installs gcc)")
    nb = execute("profile", kernel_name, tmp_path)
    fg = cell_with(nb, "bpfkit.flamegraph(")
    (svg,) = mime(fg, "image/svg+xml")
    root = ET.fromstring(svg)
    titles = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title"))
    for fn in ("handle_request", "compress_block", "parse_input"):
        assert fn in titles, fn
    (html,) = mime(fg, "text/html")
    assert html.startswith("<iframe srcdoc=") and "compress_block" in html
    m = re.search(r"(\d+) samples, (\d+)% in compress_block", text_of(cell_with(nb, "in_compress")))
    assert m and int(m.group(1)) >= 50 and 50 <= int(m.group(2)) <= 95, text_of(cell_with(nb, "in_compress"))


def test_maps_notebook(kernel_name: str, tmp_path: Path):
    nb = execute("maps", kernel_name, tmp_path)
    rerun = text_of(cell_with(nb, "bpf_programs()"))
    assert re.search(r"\d+ BPF program\(s\) before and after 20 re-runs", rerun), rerun
    (obj_html,) = mime(cell_exactly(nb, "sc"), "text/html")
    assert "count_calls" in obj_html and "calls" in obj_html and "per_cpu" in obj_html
    (table_html,) = mime(cell_exactly(nb, 'sc["calls"]'), "text/html")
    assert "<table" in table_html
    mine = cell_with(nb, "mine = df[")
    assert "getppid" in text_of(mine) and "123" in text_of(mine), text_of(mine)
    assert mime(mine, "text/html"), "a DataFrame shows as HTML"
    long = text_of(cell_with(nb, 'percpu="long"'))
    assert "cpu" in long


def test_a_notebook_renders_in_chromium(kernel_name: str, tmp_path: Path):
    """The latency and profile notebooks, executed, converted to HTML by nbconvert and
    photographed by headless Chromium: the pictures are not blank."""
    chromium = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if chromium is None:
        pytest.fail("headless Chromium is missing (make test installs chromium-headless-shell)")
    from nbconvert import HTMLExporter

    keep = os.environ.get("BPFKIT_NOTEBOOK_PICTURES")
    for name, height in (("latency", 2600), ("profile", 1500)):
        nb = execute(name, kernel_name, tmp_path)
        body, _ = HTMLExporter().from_notebook_node(nb)
        page = tmp_path / f"{name}.html"
        page.write_text(body)
        shot = tmp_path / f"{name}.png"
        r = subprocess.run([chromium, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--screenshot={shot}", f"--window-size=1100,{height}", page.as_uri()],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
        import matplotlib.image

        pixels = matplotlib.image.imread(str(shot))
        assert pixels.shape[0] == height and len({tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[2])}) > 50
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / f"notebook-{name}.png")
