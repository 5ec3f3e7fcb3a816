"""Retraining of derived architectures with the paper's recipe (Table 2), on timm's parts.

    recipe.py       Recipe presets (full, cifar, short), short training's defaults, overrides
    data.py         ImageFolder / CIFAR-10 python folders, samplers and loaders
    augment.py      timm transforms, Mixup/CutMix and the matching training loss
    optim.py        timm optimiser and LR schedule from a recipe
    model_spec.py   build a model for training and rebuild it from a checkpoint
    checkpoint.py   atomic, weights_only-loadable checkpoints
    distributed.py  torchrun / Ray Train process groups
    epoch.py        one training epoch (with its step hook) and one validation pass
    engine.py       the one training engine: step, seeded epoch loop, resume state, run record
    logs.py         progress bar, metrics.csv and TensorBoard events
    trainer.py      the whole training run (`neonas train`)
    ray_launch.py   the same run through Ray Train (`--address`)
    short_training.py  the short training the search calls per trial (`--signal short-training`)
    accuracy.py     top-1/top-5 of a saved checkpoint (`neonas evaluate`)

Modules import torch and timm at the top, so import them where they are used.
"""
