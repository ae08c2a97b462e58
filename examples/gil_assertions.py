"""What a failing gilx.testing assertion says: `python examples/gil_assertions.py`.

In a test suite you would just call the assertion; here the failure is caught
and its message printed, to show it.
"""

import zlib

import gilx
from gilx.testing import assert_releases_gil

DATA = bytes(range(256)) * 4096

# zlib releases the GIL while it compresses: this passes.
result = assert_releases_gil(zlib.compress, DATA)
print(f"passed: {result.callable} held the GIL {result.hold_fraction:.1%} of the time")

# count_gil holds it for the whole call: this fails, and says why.
try:
    assert_releases_gil(gilx.count_gil, 5_000_000)
except AssertionError as failure:
    print(f"AssertionError: {failure}")
