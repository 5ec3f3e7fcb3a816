"""How often the full recipe's RandAugment asks posterize for 0 bits (Pillow 13 raises there).

Builds the recipe's RandAugment with timm's `rand_augment_transform`, records the bits every
posterize call asks for, and applies it to `--images` copies of a small random image. Prints
the share of images with a 0-bit request (each of which ended a training run before
`posterize_keeps_a_bit`), the share timm's parameters predict, and the errors with the fix.

    python benchmarks/augment_posterize.py --images 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(auto_augment: str, images: int, seed: int) -> dict:
    """Images whose augmentation asked posterize for 0 bits, and errors with the fix."""
    import numpy as np
    from PIL import Image
    from timm.data.auto_augment import posterize, rand_augment_transform

    from neonas.train.augment import posterize_at_least_one_bit

    requested: list[int] = []

    def recording(img, bits_to_keep, **kwargs):
        requested.append(bits_to_keep)
        return posterize_at_least_one_bit(img, bits_to_keep, **kwargs)

    transform = rand_augment_transform(auto_augment, {})
    for op in transform.ops:
        if op.aug_fn is posterize:
            op.aug_fn = recording
    random.seed(seed)
    np.random.seed(seed)
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), np.uint8))
    zero_bit_images = errors = posterized = 0
    for _ in range(images):
        requested.clear()
        try:
            transform(image)
        except Exception:
            errors += 1
        posterized += bool(requested)
        zero_bit_images += any(bits < 1 for bits in requested)
    # timm: magnitude ~ N(9, 0.5) clipped at 10; `inc1` posterize keeps 4 - int(m / 10 * 4) bits,
    # so 0 bits exactly when m >= 10. n=2 ops of 15, each applied with p 0.5.
    per_op = 1 / 15 * 0.5 * (1 - NormalDist(9, 0.5).cdf(10))
    predicted = 1 - (1 - per_op) ** 2
    return {
        "auto_augment": auto_augment,
        "images": images,
        "posterized_images": posterized,
        "zero_bit_images": zero_bit_images,
        "zero_bit_share": zero_bit_images / images,
        "one_in": images / zero_bit_images if zero_bit_images else None,
        "predicted_share": predicted,
        "predicted_one_in": 1 / predicted,
        "errors_with_fix": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto-augment", default="rand-m9-n2-mstd0.5-inc1")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure(args.auto_augment, args.images, args.seed), indent=2))


if __name__ == "__main__":
    main()
