"""The compiled hot path (xtcp_async._fastcore); everything else is in pyproject.toml.

``optional=True``: where no C compiler is found the install still succeeds and the numpy paths
run (xtcp_async/native.py warns once at start-up and reports which path is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "xtcp_async._fastcore",
            sources=["xtcp_async/_ext/fastcore.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-fno-strict-aliasing"],
            optional=True,
        ),
    ],
)
