"""The package as installed: stubs agree with the runtime, examples run, the CLI answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import recfile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_stubs_match_the_runtime() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "recfile"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tests_run_against_the_installed_package() -> None:
    # Not the source tree: the compiled module sits beside the installed package.
    assert "site-packages" in recfile.__file__ or "dist-packages" in recfile.__file__


def test_examples_record_then_replay(tmp_path: Path) -> None:
    rec = subprocess.run([sys.executable, str(EXAMPLES / "record_sensor.py"), str(tmp_path), "1.5"],
                         capture_output=True, text=True, timeout=60)
    assert rec.returncode == 0, rec.stderr
    assert "recorded 15 lidar scans and 75 odometry messages" in rec.stdout
    play = subprocess.run([sys.executable, str(EXAMPLES / "replay_pipeline.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert play.returncode == 0, play.stderr
    assert "pipeline saw 12 scans" in play.stdout


def test_module_cli_usage() -> None:
    r = subprocess.run([sys.executable, "-m", "recfile"], capture_output=True, text=True)
    assert r.returncode == 2 and "import-dimos" in r.stderr


def test_readme_python_examples_run(tmp_path: Path, monkeypatch) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Python") : readme.index("## CLI reference")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        # The observable in the quick start runs forever (loop=True): subscribe and dispose.
        block = block.replace("lidar.stream(speed=1.0, loop=True)", "lidar.stream(speed=1.0, loop=True).subscribe().dispose()")
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "drive.rec").exists()
