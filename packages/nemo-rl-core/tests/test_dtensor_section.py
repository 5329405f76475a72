"""`policy.dtensor` holds the dtensor backend's own settings: the old spelling in `policy` is one
ConfigError naming the new place, the section is refused for another backend, and a legacy
`dtensor_cfg` setting the backend does not offer is dropped with a warning, not carried."""

from __future__ import annotations

import pytest
from nemo_rl.compat import migrate_legacy_config
from nemo_rl.config import ConfigError, load_config

MOVED = "moved to policy.dtensor.offload_reference_to_cpu (an option of the dtensor backend)"


def test_the_section_is_read():
    cfg = load_config({"algorithm": "sft"}, ["policy.dtensor.offload_reference_to_cpu=false"])
    assert cfg.policy.dtensor.offload_reference_to_cpu is False
    assert load_config({"algorithm": "sft"}).policy.dtensor.offload_reference_to_cpu is True


@pytest.mark.parametrize("how", ["file", "override"])
def test_the_old_spelling_names_the_new_place(how, tmp_path):
    if how == "file":
        path = tmp_path / "run.yaml"
        path.write_text("algorithm: sft\npolicy:\n  offload_reference_to_cpu: false\n")
        source, overrides = path, None
    else:
        source, overrides = {"algorithm": "sft"}, ["policy.offload_reference_to_cpu=false"]
    with pytest.raises(ConfigError) as err:
        load_config(source, overrides)
    assert "policy.offload_reference_to_cpu" in str(err.value) and MOVED in str(err.value)
    assert len(err.value.problems) == 1
    assert "+policy" not in str(err.value)  # no advice to add it as a free-form key


def test_the_section_is_refused_for_another_backend():
    with pytest.raises(ConfigError, match="policy.dtensor.offload_reference_to_cpu set but policy.backend is 'megatron'"):
        load_config({"algorithm": "sft", "policy": {"backend": "megatron",
                                                    "dtensor": {"offload_reference_to_cpu": False}}})


def test_a_legacy_dtensor_setting_without_equivalent_is_dropped_with_a_warning():
    legacy = {"sft": {"max_num_steps": 3}, "policy": {
        "model_name": "m", "dtensor_cfg": {"enabled": True, "tensor_parallel_size": 2,
                                           "cpu_offload": False}}}
    result = migrate_legacy_config(legacy)
    key = "policy.dtensor_cfg.tensor_parallel_size"
    assert result.mapping[key] is None and "does not offer" in result.dropped[key]
    assert any("tensor_parallel_size" in w for w in result.warnings)
    assert "equals NeMo RL's default" in result.dropped["policy.dtensor_cfg.cpu_offload"]
    assert result.config.policy.backend_options == {}
