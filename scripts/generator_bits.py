"""Bit-exact digests of the phantom generator's output, to prove a speed-up changed no bit.

    python scripts/generator_bits.py record before.json          # on the old commit
    python scripts/generator_bits.py compare before.json         # on the new one, same machine

The fingerprint test (tests/test_synth_v2.py) is tolerant on purpose: numpy's
exp and power may differ in the last bit between CPUs, so a hash cannot be a
test that runs everywhere. On one machine it can: this records a SHA-256 of
every image, label and anatomical structure of a set of phantoms (both
domains, every version, small and BraTS size, missing sequences), and
compares a later run with it. Run both sides with one thread
(OMP_NUM_THREADS=1, as the script sets) and from the checkout under test.
Exit status: 0 identical, 1 a difference (listed), 2 bad use.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

BRATS = (155, 240, 240)
SMALL, MEDIUM = (40, 64, 64), (80, 120, 120)


def digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()).hexdigest()[:16]


def phantoms() -> list[tuple[str, int, tuple[int, int, int], float, str]]:
    """(domain, seed, shape, missing-sequence probability, version) of every phantom digested."""
    jobs = []
    for domain in ("glioma", "metastasis"):
        jobs += [(domain, seed, SMALL, 0.0, "2") for seed in range(4)]
        jobs += [(domain, 7, SMALL, 0.5, "2"), (domain, 3, MEDIUM, 0.0, "2"), (domain, 0, SMALL, 0.0, "1")]
        jobs += [(domain, 10_000, BRATS, 0.0, "2"), (domain, 0, BRATS, 0.0, "1")]
        jobs += [(domain, 1, SMALL, 0.0, "3"), (domain, 10_000, BRATS, 0.0, "3")]
    return jobs


def digests() -> dict[str, dict[str, str]]:
    from napari_tumorseg.synth import generate_phantom

    result = {}
    for domain, seed, shape, missing, version in phantoms():
        started = time.perf_counter()
        phantom = generate_phantom(domain, seed, shape=shape, missing_prob=missing, version=version)
        entry = {name: digest(volume) for name, volume in phantom.case.images.items()}
        entry["label"] = digest(phantom.case.label)
        structures = phantom.structures  # version 2's vessels, dura, rims, texture... (None in version 1)
        for name in [n for n in dir(structures) if not n.startswith("_")] if structures is not None else []:
            value = getattr(structures, name)
            if isinstance(value, np.ndarray):
                entry[f"structure {name}"] = digest(value)
        key = f"{domain} {seed} {'x'.join(map(str, shape))} missing {missing} v{version}"
        result[key] = entry
        print(f"{key}: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "compare"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    mode, path = argv
    now = digests()
    if mode == "record":
        with open(path, "w", encoding="utf-8") as stream:
            json.dump(now, stream, indent=1, sort_keys=True)
        print(f"recorded {len(now)} phantoms in {path}")
        return 0
    with open(path, encoding="utf-8") as stream:
        before = json.load(stream)
    different = [f"{key}: {field}" for key, fields in now.items() for field, value in fields.items()
                 if before.get(key, {}).get(field) != value]
    print(f"{len(now)} phantoms compared: " + ("all identical" if not different else f"{len(different)} differ"))
    for line in different:
        print("  " + line)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
