"""Installing the plugin the way users do: `fiftyone plugins download <url>`, then its requirements.

GitHub cannot be reached from here, so the repository's files are served as a zip archive by a local
HTTP server; FiftyOne's own download path (fetch, extract, find fiftyone.yml, copy) does the rest.
"""

import http.server
import shutil
import subprocess
import threading
import zipfile
from functools import partial
from pathlib import Path

import fiftyone as fo
import fiftyone.plugins as fop
import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "@idc/idc"


def _repository_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files the repository holds")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]


@pytest.fixture
def served_archive(tmp_path):
    """The repository as GitHub serves it: one top-level folder inside a zip, over HTTP."""
    archive = tmp_path / "www" / "idc-main.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in _repository_files():
            bundle.write(REPO / name, f"idc-main/{name}")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    server.shutdown()
    server.server_close()


def test_download_installs_the_plugin_and_its_requirements_resolve(served_archive, tmp_path, monkeypatch):
    plugins_dir = tmp_path / "plugins"
    plugins_dir.mkdir()
    monkeypatch.setattr(fo.config, "plugins_dir", str(plugins_dir))

    downloaded = fop.download_plugin(served_archive)

    assert set(downloaded) == {PLUGIN}
    installed = Path(downloaded[PLUGIN])
    assert installed == plugins_dir / "@idc" / "idc"
    for needed in ("fiftyone.yml", "requirements.txt", "operators/__init__.py", "idc_engine/__init__.py"):
        assert (installed / needed).is_file(), needed
    plugin = fop.get_plugin(PLUGIN)
    assert Path(plugin.directory) == installed
    assert "train_blip2idc" in plugin.operators

    requirements = fop.load_plugin_requirements(PLUGIN)
    assert any(line.startswith("transformers") for line in requirements)
    fop.ensure_plugin_requirements(PLUGIN, error_level=0)  # raises if one is not satisfied here
