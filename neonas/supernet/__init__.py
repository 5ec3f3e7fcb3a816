"""A weight-sharing NeoCell supernet: every network of a search space in one set of weights.

Train it once on the user's data (`neonas supernet train`: random subnets per step, balanced
ones, or BigNAS's sandwich rule with in-place distillation), divide it into few-shot parts by
transition plan (`neonas supernet few-shot`), then score any candidate of the space by its
inherited weights in seconds (`neonas search --supernet CKPT|DIR`), or extract one as a normal
checkpoint (`neonas supernet extract`). See docs/supernet.md.

    ckpt = train_supernet("tiny", "data/", output_dir="results/supernet/tiny", epochs=10)
    parts = train_few_shot(ckpt, "results/supernet/tiny-few-shot")
    scorer = SubnetScorer(parts, "data/")  # or SubnetScorer(ckpt, ...): the whole supernet
    top1 = scorer.score(config)  # percent, BatchNorm re-estimated, on data/val
"""

from neonas.supernet.coverage import SpaceCoverage, largest_subnet, sandwich
from neonas.supernet.few_shot import FewShot, load_few_shot
from neonas.supernet.few_shot_training import train_few_shot
from neonas.supernet.network import SuperNet
from neonas.supernet.scoring import SIGNAL, SubnetScorer, score_subnet
from neonas.supernet.subnet_weights import extract_subnet, subnet_state_dict
from neonas.supernet.training import train_supernet

__all__ = [
    "SIGNAL",
    "FewShot",
    "SpaceCoverage",
    "SubnetScorer",
    "SuperNet",
    "extract_subnet",
    "largest_subnet",
    "load_few_shot",
    "sandwich",
    "score_subnet",
    "subnet_state_dict",
    "train_few_shot",
    "train_supernet",
]
