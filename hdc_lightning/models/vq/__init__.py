"""The VQ stream: encoder/decoder, cosine quantiser, index-map entropy coding."""

from hdc_lightning.models.vq.index_coding import IndexCoder, IndexPrior, quantize_pmf
from hdc_lightning.models.vq.model import VQModel, VQOutput
from hdc_lightning.models.vq.quantizer import CosineQuantizer, QuantizerOutput

__all__ = ["CosineQuantizer", "IndexCoder", "IndexPrior", "QuantizerOutput", "VQModel", "VQOutput", "quantize_pmf"]
