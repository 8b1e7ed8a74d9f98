"""What a model learns: one module per pre-training objective, each with its batch builder, its loss and the
metrics it reports (engine/objectives/base.py says how they fit together).

`catalog.py` describes every objective in words and needs only the standard library, so the studio and the
config checks read it without torch; `registry.py` maps a name to its torch implementation. This file imports
nothing, so that importing the catalog never loads torch.
"""
