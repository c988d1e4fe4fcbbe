"""The official benchmark_model binaries and benchmark APK: where to get them, cached per ABI.

Two tools: LiteRT's own ``benchmark_model`` (CompiledModel API, the default runtime), published by
Google for each ``ai-edge-litert`` release at ``litert/binaries/<version>/android_arm64/`` (the
bucket LiteRT CLI downloads from; arm64 only), and TFLite's classic one (``--runtime tflite``),
whose nightly builds exist for four ABIs. The user can point at a binary they trust
(``--benchmark-binary``). Otherwise, when the machine has internet, the build is downloaded once
into a cache keyed by tool, version and ABI (``~/.cache/tflite-deploy/benchmark_model/<version>/
<abi>/``, ``litert-<version>`` for LiteRT's), with a manifest recording its size and sha256; a
cached file that no longer matches its manifest is fetched again.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from tflite_deploy.errors import UserError
from tflite_deploy.hashing import cache_root, sha256_file

# TensorFlow's documented nightly builds (tensorflow/lite/tools/benchmark/README.md).
NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
               "nightly/latest/{file}")
ABI_FILES = {
    "arm64-v8a": "android_aarch64_benchmark_model",
    "armeabi-v7a": "android_arm_benchmark_model",
    "x86_64": "android_x86_64_benchmark_model",
    "x86": "android_x86_benchmark_model",
}
APK_FILE = "android_aarch64_benchmark_model.apk"
# LiteRT's prebuilt tools, as LiteRT CLI (litert_cli/core/constants.py, 0.2.1) downloads them
LITERT_URL = "https://storage.googleapis.com/litert/binaries/{version}/android_arm64/{file}"
LITERT_ABIS = ("arm64-v8a",)
RUNTIMES = ("litert", "tflite")
_MAGIC = {"binary": b"\x7fELF", "apk": b"PK\x03\x04"}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def url_for(file: str) -> str:
    return (os.environ.get("TFLITE_DEPLOY_BENCHMARK_URL") or NIGHTLY_URL).format(file=file)


def litert_version() -> str:
    """The installed ``ai-edge-litert`` version, whose LiteRT binaries match it; "nightly" without one."""
    import importlib.metadata

    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "nightly"


def litert_url_for(file: str, version: str) -> str:
    return (os.environ.get("TFLITE_DEPLOY_LITERT_URL") or LITERT_URL).format(version=version, file=file)


def fetch_litert_tool(abi: str, version: Optional[str] = None, expected_sha256: Optional[str] = None,
                      timeout: float = 120.0) -> Path:
    """The cached LiteRT ``benchmark_model`` for ``abi`` and the installed ai-edge-litert, downloading it once."""
    if abi not in LITERT_ABIS:
        raise UserError(f"LiteRT publishes benchmark_model for {', '.join(LITERT_ABIS)} only, not for ABI {abi!r}. "
                        "Use runtime=tflite (TFLite's nightly builds cover more ABIs) or pass tool=PATH, a "
                        "benchmark_model for it.", param="runtime")
    version = version or litert_version()
    folder = cache_root() / "benchmark_model" / f"litert-{version}" / abi
    return _cached(litert_url_for("benchmark_model", version), folder / "benchmark_model", "binary",
                   expected_sha256, timeout)


def fetch_tool(abi: str, kind: str = "binary", version: str = "nightly", expected_sha256: Optional[str] = None,
               timeout: float = 120.0) -> Path:
    """The cached benchmark_model (``kind="binary"``) or benchmark APK for ``abi``, downloading it once."""
    if kind == "binary":
        if abi not in ABI_FILES:
            raise UserError(f"No official benchmark_model build for ABI {abi!r} (known: {', '.join(ABI_FILES)}). "
                            "Build one and pass tool=PATH.", param="tool")
        file = ABI_FILES[abi]
    else:
        file = APK_FILE
    folder = cache_root() / "benchmark_model" / version / (abi if kind == "binary" else "apk")
    return _cached(url_for(file), folder / file, kind, expected_sha256, timeout)


def _cached(url: str, target: Path, kind: str, expected_sha256: Optional[str], timeout: float) -> Path:
    """``target`` if it still matches its manifest, else downloaded from ``url`` (once, across threads)."""
    folder = target.parent
    with _locks_guard:
        lock = _locks.setdefault(str(target), threading.Lock())
    with lock:  # several device workers may want the same file at once: download it once
        manifest = folder / "manifest.json"
        if target.is_file() and manifest.is_file():
            info = json.loads(manifest.read_text())
            if info.get("size") == target.stat().st_size and info.get("sha256") == sha256_file(target) and (
                    expected_sha256 is None or info["sha256"] == expected_sha256):
                return target
        return _download(url, target, manifest, kind, expected_sha256, timeout)


def _download(url: str, target: Path, manifest: Path, kind: str, expected_sha256: Optional[str],
              timeout: float) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                f.write(chunk)
        head = tmp.read_bytes()[:4]
        if head != _MAGIC[kind]:
            raise UserError(f"Downloaded {url} but it is not an Android {'executable' if kind == 'binary' else 'APK'} "
                            f"(starts with {head!r}); not using it.")
        digest = sha256_file(tmp)
        if expected_sha256 and digest != expected_sha256:
            raise UserError(f"Downloaded {url} but its sha256 is {digest}, not the expected {expected_sha256}; "
                            "not using it.")
        tmp.chmod(0o755)
        os.replace(tmp, target)
        manifest.write_text(json.dumps({"url": url, "sha256": digest, "size": target.stat().st_size}, indent=2))
        return target
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise UserError(f"Could not download the official benchmark tool from {url}: {e}. Without internet, "
                        "download it elsewhere and pass tool=PATH.", param="tool") from None
    finally:
        tmp.unlink(missing_ok=True)
