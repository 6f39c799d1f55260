"""Reproduce the papers' experiments on the synthetic domains (``tumorseg experiment ...``).

- :mod:`.meta_tune`: paper 000, a glioma-pretrained network adapted to a few
  corrected slices of synthetic metastasis patients by naive fine-tuning,
  passive and active meta-tuning; analysed in :mod:`.meta_tune_analysis`.
- :mod:`.lifelong`: paper 004, a static U-Net and a Dy-CNN trained from
  scratch on a stream of T2-only / FLAIR-only batches; analysed in
  :mod:`.lifelong_analysis`.
- :mod:`.api` runs either end to end and writes results.json, results.md
  (:mod:`.report`) and the figures (:mod:`.plots`); :mod:`.common` holds the
  seed ranges, statistics and result files both use.

Importing this package imports nothing heavy; the modules import torch.
"""
