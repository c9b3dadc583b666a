"""Shared fixtures: a small shapes-change benchmark and a tiny BLIP2IDC, built once per session."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# FiftyOne reads its configuration when first imported: isolate it before any test imports it. Each
# test session gets its own mongod (FiftyOne's bundled binary, on a free port, reached by URI), its own
# database name, plugin and zoo folders. A session that only set FIFTYONE_DATABASE_DIR would attach to
# any FiftyOne database service this user already runs, and the first session to end would pull the
# database out from under the others.
REPO = Path(__file__).resolve().parent.parent
FIFTYONE_HOME = Path(tempfile.mkdtemp(prefix="idc-tests-fiftyone-"))
(FIFTYONE_HOME / "plugins").mkdir()
(FIFTYONE_HOME / "plugins" / "idc").symlink_to(REPO, target_is_directory=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_mongod() -> tuple[subprocess.Popen, str]:
    """FiftyOne's bundled mongod for this session alone; found without importing fiftyone."""
    spec = importlib.util.find_spec("fiftyone")
    mongod = Path(spec.submodule_search_locations[0]) / "db" / "bin" / "mongod"
    (FIFTYONE_HOME / "db").mkdir()
    port = _free_port()
    log = open(FIFTYONE_HOME / "mongod.log", "w")  # open as long as mongod runs
    process = subprocess.Popen(
        [str(mongod), "--port", str(port), "--bind_ip", "127.0.0.1", "--dbpath", str(FIFTYONE_HOME / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the test session's mongod did not start: {(FIFTYONE_HOME / 'mongod.log').read_text()}")
        time.sleep(0.1)
    return process, f"mongodb://127.0.0.1:{port}"


MONGOD, MONGODB_URI = _start_mongod()
atexit.register(MONGOD.terminate)
os.environ.update(
    {
        "FIFTYONE_DATABASE_URI": MONGODB_URI,
        "FIFTYONE_DATABASE_NAME": f"idc-tests-{os.getpid()}",
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_PLUGINS_DIR": str(FIFTYONE_HOME / "plugins"),
        "FIFTYONE_MODEL_ZOO_DIR": str(FIFTYONE_HOME / "models"),
        "FIFTYONE_APP_CONFIG_PATH": str(FIFTYONE_HOME / "app_config.json"),
        "FIFTYONE_CONFIG_PATH": str(FIFTYONE_HOME / "config.json"),
        "FIFTYONE_SHOW_PROGRESS_BARS": "false",
    }
)
os.environ.pop("FIFTYONE_DATABASE_DIR", None)
os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_sessionfinish(session, exitstatus):
    _stop_mongod()
    shutil.rmtree(FIFTYONE_HOME, ignore_errors=True)


def _stop_mongod():
    """Let this session's mongod shut down before its folder is removed (else it aborts noisily)."""
    import sys

    database = sys.modules.get("fiftyone.core.odm.database")
    if database is not None:
        database._disconnect()
    if MONGOD.poll() is None:
        MONGOD.terminate()
        try:
            MONGOD.wait(timeout=60)
        except subprocess.TimeoutExpired:
            MONGOD.kill()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    from idc_engine.data.shapes_change import generate

    out = tmp_path_factory.mktemp("shapes")
    generate(out, train=64, test=24, validation=16)
    return out


@pytest.fixture(scope="session")
def shapes_pairs(shapes_dir):
    from idc_engine.data.manifest import read_manifest

    return read_manifest(shapes_dir / "manifest.jsonl")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A randomly initialised tiny BLIP2IDC saved like a real checkpoint."""
    from idc_engine.model.tiny import build_tiny

    out = tmp_path_factory.mktemp("tiny")
    build_tiny().save_pretrained(out)
    return out


@pytest.fixture
def tiny_model(tiny_dir):
    from idc_engine.model.blip2idc import BLIP2IDC

    return BLIP2IDC.from_pretrained(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def full_size_processor(tiny_dir):
    """The tiny preset's processor, made to feed a full-size BLIP-2: 224-pixel images, 32 queries.

    Its tokenizer's ids fit the OPT vocabulary; the model's ``image_token_index`` must be set to
    ``processor.tokenizer.image_token_id``.
    """
    from transformers import Blip2Processor

    processor = Blip2Processor.from_pretrained(tiny_dir)
    processor.image_processor.size = {"height": 224, "width": 224}
    processor.num_query_tokens = 32
    return processor


@pytest.fixture
def image_pairs(shapes_pairs):
    from idc_engine.data.loading import load_pairs

    _, images, _ = load_pairs(shapes_pairs[:4])
    return images
