"""Build the training and validation slice caches of `tumorseg train` for one generator version, in parallel.

    python docs/results/generator-v6/build_caches.py VERSION CACHE_DIR WORKERS [TRAIN_SEEDS]

The same layout and seeds as gpu_run.sh's training commands, so `tumorseg train --cache-dir CACHE_DIR` then
only reads them: on the GPU machine the caches of both versions are built side by side before any training
starts, and the number of steps is set from the time left.
"""

import sys

from napari_tumorseg.training.data import seed_range
from napari_tumorseg.training.sources import SliceLayout, synthetic_slice_cache

if __name__ == "__main__":
    version, cache_dir, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    train_seeds = sys.argv[4] if len(sys.argv) > 4 else "0:240"
    layout = SliceLayout(multiple=2**4, context=1, tumour_slices=14, empty_slices=10)
    for seeds in (train_seeds, "9000:9004"):
        synthetic_slice_cache("glioma", seed_range(seeds), layout, cache_dir=cache_dir, workers=workers,
                              version=version)
    print(f"version {version}: caches in {cache_dir}")
