"""The package as a user installs it: ``python -m build`` makes a wheel and an sdist; the wheel
installs into a fresh virtual environment, its ``catalogue-gateway`` reports its version,
carries the published schema and example configuration, and its ``demo`` answers a query."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from gateway import __version__
from tests.processes import ROOT, Process

pytestmark = pytest.mark.slow  # a build, a fresh environment, a demo


def test_the_wheel_installs_into_a_fresh_environment_and_its_demo_answers(
        tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(name.endswith("schema/schema.graphql") for name in names)

    venv = tmp_path / "venv"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is not None:  # from the cache `make` filled: seconds
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True, timeout=300)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python"),
                        str(wheel)], check=True, timeout=900)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", str(wheel)], check=True,
                       timeout=900)
    command = venv / "bin" / "catalogue-gateway"
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True,
                             check=True, timeout=60, cwd=tmp_path).stdout.strip()
    assert version == f"catalogue-gateway {__version__}"
    shared = venv / "share" / "catalogue-gateway"
    assert (shared / "schema.graphql").read_text() == (ROOT / "schema/schema.graphql").read_text()
    assert (shared / "gateway.toml").is_file() and (shared / "gateway.schema.json").is_file()

    # Run from elsewhere than the source tree: the installed package, not this checkout.
    with Process([str(command), "demo", "--port", "0"], cwd=tmp_path) as demo:
        url = demo.wait_for(r"^  GraphQL +(http://\S+/graphql)$").group(1)
        answer = httpx.post(url, json={"query": "{ sources { id } }"}, timeout=30).json()
        ready = httpx.get(url.replace("/graphql", "/readyz"), timeout=30).json()
    assert answer == {"data": {"sources": [{"id": "carecloud"}, {"id": "joptic"},
                                           {"id": "axim"}, {"id": "comestri"}]}}
    assert ready["version"] == __version__
    assert str(venv) in subprocess.run(
        [str(venv / "bin/python"), "-c", "import gateway; print(gateway.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path).stdout
