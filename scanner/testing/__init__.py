"""Builders of test inputs that tests/, bench/ and tools/ share: a known-answer ONNX model, group
photos of the shared faces, C2PA-signed images, a `facescan serve` process. One home they all
import (no `sys.path` games), so renaming a test helper cannot break `make bench`.

facescan itself never imports this package (tests/test_layout.py), and the wheel does not ship
it: it is there in a checkout (`make install`, an editable install). The libraries a builder
needs beyond facescan's own (onnx, cryptography, c2pa-python, pytest) load when it runs.
"""
