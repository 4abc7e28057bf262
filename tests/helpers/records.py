"""Run records made by hand, for tests of what reads records (report, model=from:)."""

from __future__ import annotations

from semillero.records import RunRecord


def screening_record(
    model: str,
    loss: float,
    *,
    hub_id: str | None = None,
    status: str = "done",
    scale: str = "full",
) -> RunRecord:
    """A gpt2_screening record of `model` with train loss `loss`."""
    return RunRecord(
        run_name=f"{model}__spanish-poetry__clm__{'0' * 12}",
        config_hash="0" * 12,
        study="gpt2_screening",
        scale=scale,
        seed=42,
        status=status,  # type: ignore[arg-type]
        error=None if status == "done" else "RuntimeError: CUDA out of memory",
        config={
            "model": {"name": model, "hub_id": hub_id or model},
            "dataset": {"name": "spanish-poetry"},
        },
        metrics={
            "train_loss": loss,
            "train_runtime": 20.0,
            "eval_loss": loss - 0.2,
            "perplexity": 2.0,
        },
        samples=[f"En el silencio de la noche {model}"],
        device="cuda: test",
    )
