"""neonas: hardware-aware neural architecture search over the NeoCell design space.

Importing neonas registers the NeoNeXt family with timm, so that
`timm.create_model("neonext_tiny")` works after `import neonas`.
"""

__version__ = "0.1.0"

from neonas import models as models  # noqa: E402  (registration with timm is the side effect)
