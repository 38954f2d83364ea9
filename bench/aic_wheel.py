"""Locate, download and unpack NVIDIA's `aiconfigurator-core` wheel for the calibration scripts.

The wheel (PyPI `aiconfigurator-core`, Apache-2.0) ships SGLang kernel timings
under `aiconfigurator_core/systems/data/<system>/<op>/sglang/<version>/` and
measured deployments in `aiconfigurator_core/systems/silicon_sample.csv`.
Only `systems/` and `model_configs/` are unpacked.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL_VERSION = "0.12.0"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / ".whl"
_MEMBERS = ("aiconfigurator_core/systems/", "aiconfigurator_core/model_configs/")


def _unpacked_root(path: Path) -> Path | None:
    """Return the folder holding `systems/` if `path` is an unpacked wheel (or its package folder)."""
    for candidate in (path, path / "aiconfigurator_core"):
        if (candidate / "systems" / "silicon_sample.csv").is_file():
            return candidate
    return None


def _unpack(wheel: Path, target: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith(_MEMBERS)]
        if not members:
            raise SystemExit(f"error: {wheel} has no aiconfigurator_core/systems folder; is it aiconfigurator-core?")
        archive.extractall(target, members)
    return target / "aiconfigurator_core"


def _download(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", f"aiconfigurator-core=={WHEEL_VERSION}",
               "--no-deps", "-d", str(cache)]
    print(f"downloading aiconfigurator-core {WHEEL_VERSION} into {cache} ...", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(cache.glob(f"aiconfigurator_core-{WHEEL_VERSION}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise SystemExit(f"error: pip download of aiconfigurator-core=={WHEEL_VERSION} failed; "
                         f"pass --wheel PATH to a local copy\n{result.stderr.strip()}")
    return wheels[0]


def locate_package(wheel: str | None, cache: Path = DEFAULT_CACHE) -> Path:
    """Return the unpacked `aiconfigurator_core` folder, unpacking or downloading the wheel if needed.

    `wheel` may be a `.whl` file, an unpacked wheel folder, or None to use
    (and fill) `cache`.
    """
    if wheel is not None:
        path = Path(wheel)
        if path.is_file() and path.suffix == ".whl":
            root = _unpacked_root(cache / "unpacked")
            return root if root is not None else _unpack(path, cache / "unpacked")
        root = _unpacked_root(path) if path.is_dir() else None
        if root is None:
            raise SystemExit(f"error: --wheel {wheel}: expected an aiconfigurator-core .whl file or "
                             "a folder holding aiconfigurator_core/systems")
        return root
    root = _unpacked_root(cache / "unpacked")
    if root is not None:
        return root
    wheels = sorted(cache.glob(f"aiconfigurator_core-{WHEEL_VERSION}-*.whl")) if cache.is_dir() else []
    return _unpack(wheels[0] if wheels else _download(cache), cache / "unpacked")


def sglang_table(systems: Path, system: str, op: str, filename: str) -> tuple[Path, str]:
    """Return the newest SGLang version's `filename` for one system and op, with that version."""
    base = systems / "data" / system / op / "sglang"
    found = [(_version_key(p.parent.name), p) for p in base.glob(f"*/{filename}")] if base.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no SGLang table {op}/{filename} for {system} under {systems}")
    _, path = max(found)
    return path, path.parent.name


def _version_key(version: str) -> tuple:
    """Sort key for versions such as 0.5.6.post2 or 0.5.14 (numeric parts compared as numbers)."""
    return tuple((0, int(piece)) if piece.isdigit() else (1, piece)
                 for piece in re.findall(r"\d+|[a-z]+", version.lower()))


def write_presets(path: Path, presets: dict) -> None:
    """Write the efficiency presets YAML with a header naming the scripts that produce it."""
    import yaml

    header = ("# Efficiency constants per GPU preset, loaded by sglsim.costs.efficiency.efficiency_for_gpu.\n"
              "# Generated: `gpus` by bench/calibrate.py (SGLang kernel tables of aiconfigurator-core\n"
              "# 0.12.0), `serving_overheads` by bench/validate_silicon.py --fit (h100_sxm SGLang rows of\n"
              "# its silicon_sample.csv). Rerun those scripts instead of editing by hand.\n")
    path.write_text(header + yaml.safe_dump(presets, sort_keys=False, width=100))


def import_pandas():
    """Import pandas (the `calib` extra), or exit with the install command."""
    try:
        import pandas
    except ImportError:
        raise SystemExit("error: this script reads Parquet/CSV tables with pandas and pyarrow: "
                         "pip install -e '.[calib]'") from None
    return pandas
