"""`argn` and `dp-argn`: an autoregressive tabular network on torch alone (see `model`).

Nothing is imported here, so `import tabsynth.models.argn` stays free of torch.
"""
