"""ArchConfig: exact round trips and one clear error per kind of bad file."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from neonas.arch import ArchConfig
from neonas.errors import UserError
from neonas.models import variant_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def _tiny_dict() -> dict:
    return yaml.safe_load(
        (Path(__file__).parents[1] / "configs" / "fractional_example.yaml").read_text()
    )


def _error_for(data: dict) -> str:
    with pytest.raises(UserError) as info:
        ArchConfig.from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_config_round_trips_exactly_through_yaml_and_json(path: Path) -> None:
    config = ArchConfig.from_yaml(path)
    assert config.to_yaml() == path.read_text()
    assert ArchConfig.from_yaml(config.to_yaml()) == config
    assert ArchConfig.from_json(config.to_json()) == config


def test_registered_variants_match_their_example_files() -> None:
    names = [f"neonext_{size}{ref}" for size in ("tiny", "small", "base") for ref in ("", "_ref")]
    for name in names:
        assert ArchConfig.from_yaml(
            Path(__file__).parents[1] / "configs" / f"{name}.yaml"
        ) == variant_config(name)


def test_configs_written_before_the_reference_fields_still_load() -> None:
    data = _tiny_dict()
    for field in ("mlp_bias", "stem_bias", "transition", "rounding"):
        data.pop(field)
    config = ArchConfig.from_dict(data)
    assert config.mlp_bias and config.stem_bias and config.transition == "neocell_first"
    assert config.rounding == "ceil"
    assert "rounding: ceil" in config.to_yaml()


def test_unknown_rounding_is_refused_by_name() -> None:
    message = _error_for({**_tiny_dict(), "rounding": "nearest"})
    assert "rounding: Input should be 'ceil' or 'floor'" in message


def test_rounding_of_the_registered_variants() -> None:
    assert variant_config("neonext_tiny").rounding == "ceil"
    assert variant_config("neonext_tiny_ref").rounding == "floor"


def test_unknown_transition_is_refused_by_name() -> None:
    message = _error_for({**_tiny_dict(), "transition": "sideways"})
    assert "transition: Input should be 'neocell_first' or 'pointwise_first'" in message


def test_save_and_load_by_extension(tmp_path: Path) -> None:
    config = variant_config("neonext_tiny")
    assert ArchConfig.load(config.save(tmp_path / "t.yaml")) == config
    assert ArchConfig.load(config.save(tmp_path / "t.json")) == config
    assert not list(tmp_path.glob(".*.tmp"))


def test_config_is_immutable() -> None:
    config = variant_config("neonext_tiny")
    with pytest.raises(ValidationError, match="frozen"):
        config.num_classes = 10  # type: ignore[misc]


def test_feature_sizes_follow_stem_and_sampling_ratios() -> None:
    assert variant_config("neonext_tiny").feature_sizes() == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert ArchConfig.from_dict(_tiny_dict()).feature_sizes() == [(12, 12), (8, 8), (4, 4)]


def test_unknown_key_is_refused_by_name() -> None:
    data = _tiny_dict()
    data["stages"][1]["widht"] = 64
    assert _error_for(data).startswith("config: stages.1.widht: unknown field")


def test_wrong_type_is_refused_by_name() -> None:
    data = _tiny_dict()
    data["stages"][0]["depth"] = "2"
    assert "stages.0.depth" in _error_for(data)


def test_bool_is_not_an_int() -> None:
    data = _tiny_dict()
    data["num_classes"] = True
    assert "num_classes" in _error_for(data)


def test_shares_must_sum_to_one() -> None:
    data = _tiny_dict()
    data["stages"][1]["cells"][0]["share"] = 0.5
    assert "sum to 0.75" in _error_for(data)


def test_matrix_larger_than_feature_map_is_refused() -> None:
    data = _tiny_dict()
    data["stages"][2]["cells"][0]["size"] = 5
    message = _error_for(data)
    assert "stages.2.cells.0.size" in message and "larger than the 4x4 feature map" in message


def test_a_ratio_that_does_not_divide_the_map_rounds_by_the_configs_rule() -> None:
    data = _tiny_dict()
    data["stages"][2]["sampling"] = [3, 2]  # the 8x8 map of stage 1 -> 16/3
    assert ArchConfig.from_dict(data).feature_sizes()[2] == (6, 6)
    assert ArchConfig.from_dict({**data, "rounding": "floor"}).feature_sizes()[2] == (5, 5)


def test_odd_maps_at_240_px_round_up_in_neonas_and_down_in_the_reference() -> None:
    # 240 / 4 = 60 -> 30 -> 15 -> 7.5: the 2x2 -> 1x1 transition into stage 4 does not divide.
    assert variant_config("neonext_tiny", 240).feature_sizes() == [
        (60, 60),
        (30, 30),
        (15, 15),
        (8, 8),
    ]
    assert variant_config("neonext_tiny_ref", 240).feature_sizes() == [
        (60, 60),
        (30, 30),
        (15, 15),
        (7, 7),
    ]
    # 200 / 4 = 50 -> 25 -> 12.5 (13 or 12) -> 6.5 or 6.
    assert variant_config("neonext_tiny", 200).feature_sizes()[2:] == [(13, 13), (7, 7)]


def test_a_map_that_floor_rounding_would_empty_is_refused() -> None:
    data = {**_tiny_dict(), "input_size": 4, "rounding": "floor"}  # 1x1 after the stem
    message = _error_for(data)
    assert "stages.1.sampling" in message and "into 0x0" in message


def test_sampling_shorthand_means_a_square_ratio() -> None:
    data = _tiny_dict()
    data["stages"][2]["sampling"] = [2, 1]
    assert ArchConfig.from_dict(data).stages[2].sampling == (2, 2, 1, 1)


def test_first_stage_has_no_transition_and_later_stages_need_one() -> None:
    data = _tiny_dict()
    data["stages"][0]["sampling"] = [2, 1]
    assert "stages.0.sampling" in _error_for(data)
    data = _tiny_dict()
    data["stages"][1]["sampling"] = None
    assert "stages.1.sampling: missing" in _error_for(data)


def test_input_size_must_be_a_multiple_of_the_stem_patch() -> None:
    data = _tiny_dict()
    data["input_size"] = 50
    assert "stem_patch" in _error_for(data)


def test_too_few_channels_for_the_groups_is_refused() -> None:
    data = _tiny_dict()
    data["stages"][0]["width"] = 1
    assert "stages.0.cells" in _error_for(data)


def test_unsupported_schema_version_is_refused() -> None:
    data = _tiny_dict()
    data["schema_version"] = 99
    assert "schema_version 99" in _error_for(data)


def test_bad_files_give_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ArchConfig.from_yaml(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        ArchConfig.from_yaml(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="expected a mapping"):
        ArchConfig.from_yaml(listing)


def test_yaml_is_loaded_as_data_only(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(UserError, match="not valid YAML"):
        ArchConfig.from_yaml(evil)
