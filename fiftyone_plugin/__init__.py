"""The FiftyOne layer of idc: grouped IDC datasets, the apply_model wrapper and evaluation runs.

Everything here converts between FiftyOne and the engine (``idc_engine``), which never imports
fiftyone. The operators in ``operators/`` are thin wrappers over these functions.
"""
