"""Runs INSIDE vLLM's worker process (its own venv): imported there as a top-level module.

`VLLMServer(weight_sync=True)` puts this folder on the server's PYTHONPATH and passes
`--worker-extension-cls longhorizon_vllm_ext.WeightSyncExtension`; vLLM then mixes the class
into its worker, and the dev-mode `/collective_rpc` endpoint calls its methods by name with
string arguments. It must import nothing from longhorizon (not installed in that venv).

vLLM 0.32's own `reload_weights(weights_path=...)` reloads a checkpoint folder in place. On the
CPU backend it misses one thing: a layer whose weight is tied to another (SmolLM2's lm_head to
embed_tokens) loads nothing itself, so its prepacked GEMM copy (oneDNN, built once from the
weight) is never rebuilt and logits keep the OLD head. Measured on SmolLM2-135M: after a 5%
change to the embeddings, the first token's logprob was -1.807 on the server and -2.632 in
transformers. `sync_weights` reloads, then re-runs those layers' post-loading step.
"""

from __future__ import annotations

from typing import Any


class WeightSyncExtension:
    """Mixed into vLLM's worker class; `self` is the worker (`model_runner`, `reload_weights`)."""

    model_runner: Any
    reload_weights: Any

    def longhorizon_sync_weights(self, weights_path: str) -> dict[str, Any]:
        """Load the checkpoint folder `weights_path` in place; returns what was rebuilt."""
        self.reload_weights(weights_path=weights_path)
        model = self.model_runner.get_model()
        rebuilt = _rebuild_tied_layers(model)
        return {"weights_path": weights_path, "rebuilt": rebuilt}


def _rebuild_tied_layers(model: Any) -> list[str]:
    """Re-run `process_weights_after_loading` on layers whose weight is another layer's."""
    owners: dict[int, str] = {}
    rebuilt = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is None:
            continue
        first = owners.setdefault(id(weight), name)
        method = getattr(module, "quant_method", None)
        if first != name and method is not None:
            method.process_weights_after_loading(module)
            rebuilt.append(name)
    return rebuilt
