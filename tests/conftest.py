"""Shared fixtures: a small shapes-change benchmark and a tiny BLIP2IDC, built once per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# FiftyOne reads its configuration when first imported: isolate it before any test imports it. Each
# test session gets its own database folder and name (its own mongod), plugin and zoo folders.
REPO = Path(__file__).resolve().parent.parent
FIFTYONE_HOME = Path(tempfile.mkdtemp(prefix="idc-tests-fiftyone-"))
(FIFTYONE_HOME / "plugins").mkdir()
(FIFTYONE_HOME / "plugins" / "idc").symlink_to(REPO, target_is_directory=True)
os.environ.update(
    {
        "FIFTYONE_DATABASE_DIR": str(FIFTYONE_HOME / "db"),
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
os.environ.pop("FIFTYONE_DATABASE_URI", None)
os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_sessionfinish(session, exitstatus):
    _stop_fiftyone_database()
    shutil.rmtree(FIFTYONE_HOME, ignore_errors=True)


def _stop_fiftyone_database():
    """Let this session's mongod shut down before its folder is removed (else it aborts noisily)."""
    import sys

    database = sys.modules.get("fiftyone.core.odm.database")
    service = getattr(database, "_db_service", None)
    child = getattr(service, "child", None)
    if child is None:
        return
    database._disconnect()
    service.stop()  # closes the service's stdin: it stops mongod and exits
    try:
        child.wait(timeout=60)
    except Exception:  # a mongod that will not stop must not fail a finished test session
        pass


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
