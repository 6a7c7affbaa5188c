"""The README front page's own figures: the first command's run
(docs/examples/long_document_classification.json) and the two commands."""

import json
import os
import re

from helpers import ROOT
from helpers import load_example

RUN = os.path.join(ROOT, "docs", "examples", "long_document_classification.json")


def front_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def test_the_first_command_s_figures_are_its_committed_run():
    with open(RUN, encoding="utf-8") as handle:
        run = json.load(handle)
    example = load_example("long_document_classification")
    # The run is the README's first command: the example's defaults (and an export).
    defaults = vars(example.parse_args(["--export", "long_document.onnx"]))
    unsaved = ("json", "output", "export")  # where the files went
    assert run["arguments"]["export"] and {k: v for k, v in run["arguments"].items() if k not in unsaved} == {
        k: v for k, v in defaults.items() if k not in unsaved}
    assert run["cpu_count"] == 2
    quoted = (f"(test accuracy {run['with_global']:.3f} with global attention, {run['without_global']:.3f} "
              f"without, chance {run['chance']:.3f}; {run['seconds']:.0f} s on two CPU cores, {run['date'][:10]},")
    assert quoted in " ".join(front_page().split())
    # What the figures claim: global attention solves it, a window alone is near chance.
    assert run["with_global"] >= 0.95 and abs(run["without_global"] - run["chance"]) <= 0.1


def test_the_front_page_opens_with_exactly_the_two_commands():
    blocks = re.findall(r"```bash\n(.*?)```", front_page(), flags=re.S)
    assert blocks[:2] == [
        "python -m pip install -e . && python examples/long_document_classification.py --export long_document.onnx\n",
        'python -m pip install -e ".[test]" && python -m pytest\n',
    ]
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as handle:
        assert 'python -m pip install -e ".[test]"' in handle.read()
    assert len(front_page().splitlines()) <= 150
