#!/usr/bin/env python3
"""extract_vmlinux.py BZIMAGE OUT: writes the uncompressed ELF kernel inside a bzImage to OUT.

qemu boots that ELF directly (PVH entry), skipping the real-mode set-up and the decompressor,
which are slow under software emulation. The payload is found by trying each compression magic
the kernel may use at every offset it occurs, until a decompressor yields an ELF image."""

import subprocess
import sys

DECOMPRESSORS = [
    (b"\xfd7zXZ\x00", ["xz", "-dcq"]),
    (b"\x28\xb5\x2f\xfd", ["zstd", "-qdc"]),
    (b"\x02\x21\x4c\x18", ["lz4", "-dc"]),
    (b"\x1f\x8b\x08", ["gzip", "-dc"]),
]


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = f.read()
    for magic, cmd in DECOMPRESSORS:
        at = data.find(magic)
        while at >= 0:
            # The payload is followed by other data, so the decompressor may complain; only what
            # it writes matters.
            out = subprocess.run(cmd, input=data[at:], capture_output=True).stdout
            if out[:4] == b"\x7fELF":
                with open(dst, "wb") as f:
                    f.write(out)
                return 0
            at = data.find(magic, at + 1)
    print(f"extract_vmlinux: no compressed ELF kernel found in {src}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
