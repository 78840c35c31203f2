"""DPoser backend: the PyTorch pose-prior engine, its tasks, server, CLI, evaluation and training.

Importing ``backend`` itself is cheap and torch-free, so the Blender side can import
``backend.protocol`` without pulling in torch.
"""

__version__ = "0.1.0"
