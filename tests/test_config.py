"""The config tree composes, validates, and turns mistakes into errors that name the fix."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import TrainingArguments

from semillero.config.compose import (
    compose,
    expand_grid,
    group_options,
    normalise_args,
    run_hash,
    validate,
)
from semillero.config.schema import TrainerConfig
from semillero.errors import ConfigError
from semillero.plan import plan_grid
from tests.conftest import SCREENED_HUB_IDS

STUDIES = group_options("experiment")  # found recursively: a study in a sub-folder counts


def test_studies_are_found() -> None:
    assert "gpt2_screening" in STUDIES


@pytest.mark.parametrize("study", STUDIES)
@pytest.mark.parametrize("scale", ["tiny", "full"])
def test_every_study_grid_point_validates(study: str, scale: str) -> None:
    points = expand_grid([f"experiment={study}", f"scale={scale}"])
    assert points, f"{study} has an empty grid"
    for point in points:
        run = validate(compose(point))
        assert run.study == study.split("/")[-1] or run.study


def test_screening_grid_is_the_seven_models() -> None:
    models = [validate(compose(p)).model.hub_id for p in expand_grid(["experiment=gpt2_screening"])]
    assert tuple(models) == SCREENED_HUB_IDS


def test_screening_uses_the_seed_settings() -> None:
    run = validate(compose(["experiment=gpt2_screening"]))
    assert (run.dataset.max_train_samples, run.dataset.max_eval_samples) == (500, 100)
    t = run.trainer
    assert (t.num_train_epochs, t.per_device_train_batch_size, t.fp16) == (1, 4, True)
    assert (t.eval_steps, t.logging_steps, t.save_strategy) == (100, 50, "no")
    assert (run.method.max_length, run.method.padding) == (256, "max_length")
    g = run.method.generation
    assert (g.prompt, g.max_length, g.top_k, g.top_p) == (
        "En el silencio de la noche",
        60,
        50,
        0.95,
    )


def test_misspelled_choice_lists_the_options() -> None:
    with pytest.raises(ConfigError) as err:
        compose(["model=gtp2-small-es"])
    assert "Did you mean 'gpt2-small-es'?" in str(err.value)
    assert "distilgpt2" in str(err.value)  # the valid options are listed


def test_unknown_override_key_names_the_right_one() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        compose(["trainer.learning_rat=1e-4"])


def test_unknown_yaml_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"model\.hub_idd: unknown key\. Did you mean 'hub_id'"):
        validate(compose(["+model.hub_idd=x"]))


def test_bad_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"method\.padding"):
        validate(compose(["method.padding=sometimes"]))
    with pytest.raises(ConfigError, match="not a hub id"):
        validate(compose(["model.hub_id=no spaces allowed"]))


def test_trainer_fields_are_training_arguments() -> None:
    """Library names: each trainer knob is a TrainingArguments field of the same name."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    assert set(TrainerConfig.model_fields) <= names


def test_hash_ignores_tracker_and_paths_but_not_results() -> None:
    base = run_hash(validate(compose([])))
    assert run_hash(validate(compose(["tracker=none", "paths.output_dir=/elsewhere"]))) == base
    assert run_hash(validate(compose(["seed=1"]))) != base
    assert run_hash(validate(compose(["scale=tiny"]))) != base


def test_makefile_shorthands() -> None:
    assert normalise_args(["EXP=a", "SCALE=tiny", "seed=1"]) == [
        "experiment=a",
        "scale=tiny",
        "seed=1",
    ]


def trainable_with(model: str) -> list[str]:
    """A pre-quantised model trains only through QLoRA (method sft); others with defaults."""
    cfg = compose([f"model={model}"])
    extra = (
        ["method=sft", "adapter=qlora", "dataset=alpaca-spanish"]
        if cfg.model.get("prequantized")
        else []
    )
    return [f"model={model}", *extra]


def test_a_prequantized_model_with_full_finetuning_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"already quantised \(bnb-4bit\).*adapter=qlora"):
        validate(compose(["model=llama-3.2-1b-bnb-4bit"]))


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_has_hub_id_facts_and_twin(model: str) -> None:
    run = validate(compose(trainable_with(model)))
    assert run.model.name == model
    assert run.model.twin.config
    assert run.model.facts.parameters_m


def test_list_values_are_not_sweeps() -> None:
    points = expand_grid(["experiment=gpt2_screening", "dataset.columns=[author,content]"])
    assert len(points) == 7  # the list is one value, not a second sweep axis
    assert validate(compose(points[0])).dataset.columns == ["author", "content"]


def test_command_line_sweep_crosses_the_study_grid() -> None:
    assert len(expand_grid(["experiment=gpt2_screening", "seed=1,2"])) == 14
    points = plan_grid(["model=distilgpt2,gtp2-small-es"])
    assert [p.run is not None for p in points] == [True, False]
    assert "Did you mean 'gpt2-small-es'" in (points[1].error or "")


def test_settings_added_later_are_left_out_of_the_hash_only_at_their_defaults() -> None:
    """compose.ADDED_LATER names each setting's default; a wrong one there would rename
    every recorded run (or hash a set value away)."""
    from semillero.config.compose import ADDED_LATER

    seen = set()
    for overrides in ([], ["experiment=iberotales_grpo"]):
        data = validate(compose(overrides)).model_dump(mode="json")
        data["method"]["distributed"].pop("main_port")
        for path, default in ADDED_LATER.items():
            *parents, key = path
            node = data
            for name in parents:
                node = node[name]
            if key in node:
                assert node[key] == default, path
                seen.add(path)
    assert seen == set(ADDED_LATER)
    base = run_hash(validate(compose(["experiment=iberotales_grpo"])))
    for changed in ("method.cache_implementation=static", "trainer.torch_compile=true"):
        assert run_hash(validate(compose(["experiment=iberotales_grpo", changed]))) != base
