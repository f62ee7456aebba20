"""The README's Python examples run and print what they say."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs(capsys):
    block = re.search(r"## Use\n+```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    claimed = re.search(r"print\(vtome.info\(model\)\[\"tokens\"\]\)\s+# (\[.*?\])", block).group(1)
    assert printed == claimed


def test_vjepa2_example_runs():
    block = re.search(r"### V-JEPA 2.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope = {}
    exec(compile("import torch\nimport vtome\n" + block, "README.md", "exec"), scope)
    assert scope["logits"].shape == (1, 10)
    assert scope["features"].shape == (1, 256 - 4 * 25, 64)  # 10% of 256 tokens merged in each of 4 layers


def test_partitions_example_runs_and_prints_what_it_says(capsys):
    section = README.read_text().split("## Partitions (Video Token Merging)\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    claimed = re.findall(r"^print\(.*\)\s+# (.*)$", block, re.M)
    assert len(claimed) == 3 and printed == claimed
