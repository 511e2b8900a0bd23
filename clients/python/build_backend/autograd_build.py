"""In-tree PEP 517 build backend for autograd_client.

Why not setuptools: on Debian (where numpy and grpcio come from apt and nothing else is reachable) pip builds in an
isolated environment that cannot download setuptools or grpcio-tools, so `pip install ./clients/python` would fail
offline. This backend needs only the standard library to write the wheel, and generates the gRPC stubs from the
service's own .proto files with grpc_tools.protoc, which it finds in this order:
  1. importable here (a --no-build-isolation build, or grpcio-tools installed as a build requirement);
  2. importable by the same interpreter outside pip's isolation (Debian's python3-grpc-tools in a venv made with
     --system-site-packages); it then runs as a child process with pip's isolation variables removed;
  3. otherwise get_requires_for_build_wheel asks pip for grpcio-tools (a machine that can reach PyPI).
The stubs are generated into the wheel only: never written to the source tree, never committed.
"""
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

NAME = "autograd_client"
DIST = "autograd_client"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(HERE, NAME)
GENERATED = "_generated"  # autograd_client/_generated/<proto package path>/*_pb2.py

METADATA = f"""Metadata-Version: 2.1
Name: {DIST}
Version: {VERSION}
Summary: Python client for AutogradService: numpy in and out, stateless transforms and define-by-run sessions over REST or gRPC
Requires-Python: >=3.9
Requires-Dist: numpy>=1.21
Requires-Dist: grpcio>=1.48
Requires-Dist: protobuf>=3.20
"""

# A wire-compatible subset of google.rpc.Status and ErrorInfo (the service's rich error detail travels as a serialized
# Status in the grpc-status-details-bin trailer). Its own package, so it never clashes with googleapis-common-protos.
RPC_STATUS_PROTO = """syntax = "proto3";
package autograd_client.rpc;
message AnyValue { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated AnyValue details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
"""


def _proto_root():
    """The .proto tree: AUTOGRAD_PROTOS, else the copy inside an sdist, else the repository's src/Contracts/Protos."""
    candidates = [os.environ.get("AUTOGRAD_PROTOS"), os.path.join(HERE, "protos"),
                  os.path.normpath(os.path.join(HERE, "..", "..", "src", "Contracts", "Protos"))]
    for c in candidates:
        if c and os.path.isdir(c) and _proto_files(c):
            return c
    raise RuntimeError("no .proto files found: set AUTOGRAD_PROTOS or build from a checkout of the repository "
                       f"(looked in {', '.join(c for c in candidates if c)})")


def _proto_files(root):
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, f), root) for f in files if f.endswith(".proto")]
    return sorted(found)


def _clean_environment():
    """The environment without pip's build isolation, so a child interpreter sees its normal site-packages."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME", "PYTHONNOUSERBASE"):
        env.pop(key, None)
    return env


def _protoc_in_process():
    try:
        from grpc_tools import protoc  # noqa: F401
        return True
    except ImportError:
        return False


def _protoc_outside_isolation():
    try:
        probe = subprocess.run([sys.executable, "-c", "import grpc_tools.protoc"], env=_clean_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return probe.returncode == 0
    except OSError:
        return False


def _run_protoc(args):
    if _protoc_in_process():
        from grpc_tools import protoc
        import grpc_tools
        include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        code = protoc.main(["grpc_tools.protoc", f"-I{include}"] + args)
    elif _protoc_outside_isolation():
        script = ("import os, sys, grpc_tools; from grpc_tools import protoc; "
                  "inc = os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'); "
                  "sys.exit(protoc.main(['grpc_tools.protoc', '-I' + inc] + sys.argv[1:]))")
        code = subprocess.run([sys.executable, "-c", script] + args, env=_clean_environment(), check=False).returncode
    else:
        raise RuntimeError("grpc_tools.protoc is needed to build autograd_client (apt install python3-grpc-tools, "
                           "or pip install grpcio-tools)")
    if code != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with exit code {code}")


def _generate_stubs(out_dir):
    """Messages and gRPC stubs for every .proto under the root, with their imports moved under autograd_client."""
    root = _proto_root()
    files = _proto_files(root)
    scratch = tempfile.mkdtemp(prefix="autograd-client-protos-")
    try:
        rpc_dir = os.path.join(scratch, "autograd_client_rpc")
        os.makedirs(rpc_dir)
        with open(os.path.join(rpc_dir, "status.proto"), "w") as f:
            f.write(RPC_STATUS_PROTO)
        _run_protoc([f"-I{root}", f"-I{scratch}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
                    + [os.path.join(root, f) for f in files] + [os.path.join(rpc_dir, "status.proto")])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # protoc writes absolute imports named after the proto paths (`from autograd.v1 import tensor_pb2`); inside the
    # package they become `from autograd_client._generated.autograd.v1 import ...`, so nothing lands at top level.
    tops = sorted({f.replace(os.sep, "/").split("/")[0] for f in files if "/" in f.replace(os.sep, "/")} | {"autograd_client_rpc"})
    pattern = re.compile(r"^(\s*)(from|import) (" + "|".join(re.escape(t) for t in tops) + r")([.\s])", re.MULTILINE)
    # A .proto at the root of the tree generates a top-level module imported as `import extra_pb2 as ...`.
    roots = sorted(os.path.splitext(f)[0] + "_pb2" for f in files if "/" not in f.replace(os.sep, "/"))
    root_pattern = re.compile(r"^(\s*)import (" + "|".join(re.escape(r) for r in roots) + r")\b", re.MULTILINE) if roots else None
    for directory, _, names in os.walk(out_dir):
        open(os.path.join(directory, "__init__.py"), "a").close()
        for n in names:
            if n.endswith(".py"):
                path = os.path.join(directory, n)
                with open(path) as f:
                    text = f.read()
                text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)} {NAME}.{GENERATED}.{m.group(3)}{m.group(4)}", text)
                if root_pattern is not None:
                    text = root_pattern.sub(lambda m: f"{m.group(1)}from {NAME}.{GENERATED} import {m.group(2)}", text)
                with open(path, "w") as f:
                    f.write(text)


def _package_files():
    """(archive path, bytes) for the package's own sources and the generated stubs."""
    out = list(_own_sources())
    generated = tempfile.mkdtemp(prefix="autograd-client-stubs-")
    try:
        _generate_stubs(generated)
        for directory, _, names in os.walk(generated):
            for n in sorted(names):
                if n.endswith(".py"):
                    path = os.path.join(directory, n)
                    rel = os.path.relpath(path, generated).replace(os.sep, "/")
                    with open(path, "rb") as f:
                        out.append((f"{NAME}/{GENERATED}/{rel}", f.read()))
    finally:
        shutil.rmtree(generated, ignore_errors=True)
    out.append((f"{NAME}/{GENERATED}/__init__.py", b""))
    return sorted(dict(out).items())


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory, files):
    tag = "py3-none-any"
    wheel_name = f"{DIST}-{VERSION}-{tag}.whl"
    dist_info = f"{DIST}-{VERSION}.dist-info"
    meta = [(f"{dist_info}/METADATA", METADATA.encode()),
            (f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: autograd_build\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()),
            (f"{dist_info}/top_level.txt", f"{NAME}\n".encode())]
    entries = list(files) + meta
    record = "\n".join(_record_line(p, d) for p, d in entries) + f"\n{dist_info}/RECORD,,\n"
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in entries:
            z.writestr(zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0)), d, zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), record)
    return wheel_name


# PEP 517 hooks.

def get_requires_for_build_wheel(config_settings=None):
    return [] if _protoc_in_process() or _protoc_outside_isolation() else ["grpcio-tools"]


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = f"{DIST}-{VERSION}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    with open(os.path.join(metadata_directory, dist_info, "METADATA"), "w") as f:
        f.write(METADATA)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_sdist(sdist_directory, config_settings=None):
    """Sources, this backend and a copy of the .proto files (so the sdist builds away from the repository)."""
    import tarfile
    base = f"{DIST}-{VERSION}"
    path = os.path.join(sdist_directory, base + ".tar.gz")
    root = _proto_root()
    with tarfile.open(path, "w:gz") as tar:
        for n in ("pyproject.toml", "README.md"):
            if os.path.exists(os.path.join(HERE, n)):
                tar.add(os.path.join(HERE, n), f"{base}/{n}")
        tar.add(os.path.join(HERE, "build_backend", "autograd_build.py"), f"{base}/build_backend/autograd_build.py")
        for p, data in _own_sources():
            info = tarfile.TarInfo(f"{base}/{p}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for f in _proto_files(root):
            tar.add(os.path.join(root, f), f"{base}/protos/{f}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(METADATA.encode())
        tar.addfile(info, io.BytesIO(METADATA.encode()))
    return os.path.basename(path)


def _own_sources():
    for directory, dirs, names in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", GENERATED)]
        for n in sorted(names):
            if n.endswith((".py", ".typed")):
                path = os.path.join(directory, n)
                with open(path, "rb") as f:
                    yield os.path.relpath(path, HERE).replace(os.sep, "/"), f.read()
