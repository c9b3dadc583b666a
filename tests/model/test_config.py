"""BLIP2IDCConfig on disk: idc_config.json is what every captioning path reads the no-change decision from."""

import subprocess
import sys
import textwrap

from idc_engine.data.shapes_change import TEMPLATES
from idc_engine.model.config import IDC_CONFIG_NAME, BLIP2IDCConfig


def test_a_save_that_fails_midway_leaves_the_previous_config_whole(tmp_path):
    """`idc calibrate-no-change` saves into the model's own folder: a write cut short (disk full, a kill)
    must leave the config that was there, not half a JSON file that no model can be loaded from."""
    before = BLIP2IDCConfig(no_change_captions=TEMPLATES["none"], no_change_threshold=0.5)
    before.save(tmp_path)
    saved = (tmp_path / IDC_CONFIG_NAME).read_text()
    # A child process whose files may not grow beyond 100 bytes: the write fails partway, as on a full disk.
    child = textwrap.dedent(
        f"""
        import resource, signal
        from idc_engine.data.shapes_change import TEMPLATES
        from idc_engine.model.config import BLIP2IDCConfig
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        config = BLIP2IDCConfig(no_change_captions=TEMPLATES["none"], no_change_threshold=0.7)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
        config.save({str(tmp_path)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "File too large" in done.stderr
    assert (tmp_path / IDC_CONFIG_NAME).read_text() == saved
    assert BLIP2IDCConfig.load(tmp_path).no_change_threshold == 0.5
    assert [p.name for p in tmp_path.iterdir()] == [IDC_CONFIG_NAME]  # nothing left behind
