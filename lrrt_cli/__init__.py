"""lrrt: learning-rate range tests for PyTorch models, turned into 1Cycle schedules."""

__version__ = "0.1.0"
