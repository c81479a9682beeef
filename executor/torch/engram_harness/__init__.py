"""The PyTorch harness: a nano-vLLM-class engine serving EngramSim's step plans
(docs/torch_harness.md)."""
try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - said once, clearly, instead of a traceback
    raise SystemExit("engram_harness: PyTorch is not importable here (pip install torch, or "
                     "Debian's python3-torch with /usr/bin/python3)") from e
