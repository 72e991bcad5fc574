"""A small multilayer perceptron for scikit-learn's 8×8 digits (64 features, 10 classes)."""

from torch import nn


def build_mlp(in_features: int = 64, hidden: int = 128, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
