"""The trained VTMNets that ship (src/vtome/testbed/checkpoints/vtm-long, used by `vtome vtm table --shipped`)."""

import json

import pytest

from vtome.vtm.fit import LongData, evaluate, load_net
from vtome.vtm.net import VARIANTS
from vtome.vtm.table import shipped_dir


@pytest.fixture(scope="module")
def clips() -> LongData:
    return LongData.make("test", 80)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shipped_net_loads_and_is_as_accurate_as_recorded(variant, clips):
    path = shipped_dir() / f"{variant}.safetensors"
    record = json.loads(path.with_suffix(".json").read_text())
    net = load_net(path)
    assert net.config.variant == variant and record["fit"]["steps"] == 400
    # recorded on 400 test clips (93.5-99.5%); the first 80 of them may differ by a few clips
    assert evaluate(net, clips)["accuracy"] >= record["accuracy"] - 7.5
