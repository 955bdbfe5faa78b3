"""Region consistency (CorrCLIP, Zhang et al., ICCV 2025; shared/docs/vfm-methods-spec.md §3):
regions inside which a segmentation must agree, from superpixels, a label image or a mask
generator (:mod:`.sources`); the last block's attention restricted to them
(:mod:`.attention`, :mod:`.head`); and the majority vote of each region's class (:mod:`.vote`).
Arrays and tensors in, arrays and tensors out.

The package imports nothing itself, so that the options can read the sources' names without
loading the encoding side (import the modules: ``regions.encoding``, ``regions.vote`` ...)."""
