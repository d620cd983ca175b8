"""gridviz: interactive Jupyter widgets for GridConv Lab (built on gridconv_core)."""
