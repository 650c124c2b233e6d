"""Builds the _arenad extension for `pip install ./python` (offline).

The extension needs libarena-client's static library (it uses internal
calls the shared library does not export). setup.py configures the
project's CMake build in a temporary directory with tests and the Python
package off and builds only that library (target arena-client-static), then
links it into the extension; so a clean source tree is enough, given the
project's build dependencies (cmake, protobuf-c, libuv, ...).

Environment:
  ARENAD_SOURCE_DIR  the arenad source tree (default: the parent of this
                     directory; set it when building a copy of python/)
  ARENAD_CLIENT_LIB  an existing libarena-client.a (e.g. build/lib/...) to
                     link instead of building one
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SOURCE = Path(os.environ.get("ARENAD_SOURCE_DIR") or HERE.parent).resolve()


def _check_source():
    if not (SOURCE / "client" / "include" / "arena.h").is_file():
        raise SystemExit(f"setup.py: {SOURCE} is not the arenad source tree "
                         "(set ARENAD_SOURCE_DIR)")


class BuildExt(build_ext):
    """build_ext that first provides libarena-client.a."""

    def run(self):
        _check_source()
        lib = os.environ.get("ARENAD_CLIENT_LIB")
        tmp = None
        try:
            if not lib:
                tmp = tempfile.mkdtemp(prefix="arenad-client-")
                subprocess.run(["cmake", "-S", str(SOURCE), "-B", tmp, "-DCMAKE_BUILD_TYPE=Release",
                                "-DARENA_BUILD_TESTS=OFF", "-DARENA_PYTHON=OFF"],
                               check=True, stdout=subprocess.DEVNULL)
                subprocess.run(["cmake", "--build", tmp, "--target", "arena-client-static",
                                "-j", str(os.cpu_count() or 2)], check=True,
                               stdout=subprocess.DEVNULL)
                lib = os.path.join(tmp, "lib", "libarena-client.a")
            for ext in self.extensions:
                ext.extra_objects = [lib]
            super().run()
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)


ext = Extension(
    "arenad._arenad",
    sources=[f"src/{f}" for f in ("module.c", "errors.c", "connection.c", "lease.c")],
    include_dirs=[str(SOURCE / "client" / "include"), str(SOURCE / "client" / "conn" / "include"),
                  str(SOURCE / "common"), "src"],
    define_macros=[("_GNU_SOURCE", None)],
    libraries=["protobuf-c", "pthread"],
    extra_link_args=["-Wl,--exclude-libs,ALL"],  # the library stays inside the module
    py_limited_api=True,
)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
