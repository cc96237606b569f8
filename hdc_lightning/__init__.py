"""hdc_lightning — HDCompression (Lu et al., 2025) as a PyTorch Lightning framework."""

__version__ = "0.1.0"
