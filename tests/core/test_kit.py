"""The rest of the run kit: layered config loading, one error -> exit code map for every CLI, and
Parquet input checks whose errors name the config key, the file and the columns."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import Field

from conftest import REPO

from core.cli import run_command
from core.config import StrictModel, load_layered
from core.contracts import data_folders
from core.errors import AccountingError, ConfigError, InputError, OutputExistsError
from core.parquet import parquet_files, published_data_dir, require_columns


class Inner(StrictModel):
    rate: float = Field(gt=0)
    name: str


class Outer(StrictModel):
    inner: Inner
    tags: list[str]


def test_layers_merge_in_order_and_the_user_file_and_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"inner": {"rate": 2.0}}))
    defaults = [{"inner": {"rate": 1.0, "name": "base"}, "tags": ["a"]}, {"tags": ["b"]}]
    config = load_layered(Outer, path, defaults, overrides={"inner": {"name": "cli"}})
    assert config == Outer(inner=Inner(rate=2.0, name="cli"), tags=["b"])
    # defaults may depend on the user's file (a preset it names), and the result may be reshaped
    shaped = load_layered(Outer, path, lambda user: [{"inner": {"name": f"rate-{user['inner']['rate']}"}}],
                          reshape=lambda data: {**data, "tags": ["shaped"]})
    assert shaped.inner.name == "rate-2.0" and shaped.tags == ["shaped"]


def test_config_errors_name_the_file_and_the_key_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"inner": {"rate": -1, "name": "x", "colour": "red"}, "tags": []}))
    with pytest.raises(ConfigError) as info:
        load_layered(Outer, path)
    message = str(info.value)
    assert str(path) in message and "inner.colour: unknown key" in message and "inner.rate:" in message
    with pytest.raises(ConfigError, match="config file not found"):
        load_layered(Outer, tmp_path / "missing.yaml")


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("c.yaml: bad"), 2), (InputError("a.parquet: bad"), 2), (OutputExistsError("out: taken"), 2),
    (AccountingError("in != out"), 1),
])
def test_every_cli_maps_expected_errors_to_one_exit_code(error, code, capsys):
    def fail():
        raise error

    assert run_command(fail) == code
    assert capsys.readouterr().err == f"error: {error}\n"
    assert run_command(lambda: None) == 0 and run_command(lambda: 1) == 1  # an action may give its own code


def test_a_bug_is_not_dressed_up_as_an_input_error():
    def bug():
        raise KeyError("oops")

    with pytest.raises(KeyError):
        run_command(bug)


def test_parquet_inputs_are_checked_with_errors_naming_key_file_and_columns(tmp_path):
    good = tmp_path / "data" / "part-0.parquet"
    good.parent.mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), good)
    assert parquet_files(tmp_path / "data", "input.path") == [good]
    require_columns([good], {"id": "input.id_column", "text": "input.text_column"}, "input.path")
    with pytest.raises(InputError, match=r"input\.path: .*part-0\.parquet: missing column\(s\) \['body'\] "
                                         r"\(input\.text_column\); the file has columns \['id', 'text'\]"):
        require_columns([good], {"body": "input.text_column"}, "input.path")
    broken = tmp_path / "data" / "part-1.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="part-1.parquet: not a readable Parquet file"):
        require_columns([good, broken], {"id": "input.id_column"}, "input.path")
    with pytest.raises(InputError, match=r"data\.train: .*nowhere does not exist"):
        parquet_files(tmp_path / "nowhere", "data.train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no .parquet files"):
        parquet_files(tmp_path / "empty", "data.train")


def test_a_published_run_stands_for_its_data_folder(tmp_path):
    (tmp_path / "run" / "documents").mkdir(parents=True)
    assert published_data_dir(tmp_path / "run", ("documents",)) == tmp_path / "run"  # no manifest: not published
    (tmp_path / "run" / "manifest.json").write_text("{}")
    assert published_data_dir(tmp_path / "run", ("sft", "documents")) == tmp_path / "run" / "documents"


def test_training_never_reads_a_held_out_split_and_evaluation_never_a_training_split(tmp_path):
    prepare = tmp_path / "prepare"
    for folder in ("train", "validation", "documents"):  # a prepare run also publishes its document table
        (prepare / folder).mkdir(parents=True)
    (prepare / "manifest.json").write_text("{}")
    assert published_data_dir(prepare, data_folders("training")) == prepare / "train"
    assert published_data_dir(prepare, data_folders("evaluation")) == prepare / "validation"
    assert "validation" not in data_folders("decontamination")  # overlap is looked for in what was trained on
    with pytest.raises(ValueError, match="no data folder is read by 'trainning'"):
        data_folders("trainning")


def test_command_line_overrides_reach_the_config_and_are_validated_like_the_file(capsys):
    """``python -m JOB CMD CONFIG key=value``: dotted keys, YAML values (1e-5 a number), checked like the file."""
    from core.cli import output_override, parse_overrides
    from factory.__main__ import main, parser
    from factory.config import load_factory_config

    assert parse_overrides(["optim.learning_rate=1e-5", "optim.warmup_ratio=0.1", "filters.c4.enabled=false",
                            "run.name=abc", "sources=[]"]) == {
        "optim": {"learning_rate": 1e-5, "warmup_ratio": 0.1}, "filters": {"c4": {"enabled": False}},
        "run": {"name": "abc"}, "sources": []}
    for bad in ("novalue", "a..b=1", "=3"):
        with pytest.raises(ConfigError, match="an override is KEY=VALUE"):
            parse_overrides([bad])
    sample = str(REPO / "configs/sample.yaml")
    args = parser().parse_args(["run", sample, "dedup.fuzzy.threshold=0.85", "--output-dir", "elsewhere"])
    config = load_factory_config(args.config, output_override(args))
    assert config.dedup.fuzzy.threshold == 0.85 and config.output_dir == "elsewhere"
    assert main(["run", sample, "dedup.fuzzy.thresholdd=0.85"]) == 2
    error = capsys.readouterr().err
    assert "command-line overrides" in error and "dedup.fuzzy.thresholdd: unknown key" in error
