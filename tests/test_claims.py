"""The numbers README.md and CHANGELOG.md publish, held by tests.

- The long-document example: with global attention far above chance,
  without it near chance (a small configuration, fixed seeds).
- The character LM: held-out bits per character below the unigram
  entropy it prints.
- "The attention, exactly": 65,536 tokens in the README's configuration
  use the memory the README states (process RSS, in a fresh process).
- Installs that never fight: exactly one onnxruntime package on every
  platform, and a clear message where none can be imported; every package
  directory is in the wheel.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from helpers import ROOT
from helpers import load_example




# === Examples ===


def test_global_attention_far_above_chance_local_alone_at_chance():
    example = load_example("long_document_classification")
    # 256-token documents, the label-deciding markers in the last quarter
    # (150+ tokens from <s>); one layer of window 8 lets <s> see 8 tokens.
    args = example.parse_args([
        "--length", "256", "--classes", "2", "--markers", "16", "--train-size", "256",
        "--test-size", "128", "--epochs", "3", "--batch-size", "8", "--layers", "1",
        "--window", "8", "--hidden", "32", "--seed", "0",
    ])
    result = example.compare(args)
    chance, with_global, without_global = (
        result["chance"], result["with_global"], result["without_global"]
    )
    print(f"chance {chance:.3f}, with global {with_global:.3f}, without {without_global:.3f}")
    assert chance == 0.5
    assert with_global >= 0.95, result
    # 128 test documents: chance +- 0.15 is more than three standard errors.
    assert abs(without_global - chance) <= 0.15, result


def generated_text(path, characters=12_000, seed=0):
    """Sentences from a tiny grammar: learnable structure, no download."""
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "she"]
    verbs = ["sees", "likes", "follows", "draws", "remembers"]
    objects = ["the river", "a red house", "the long road", "his book", "the moon"]
    sentences = []
    while sum(len(s) for s in sentences) < characters:
        sentences.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}. ")
    path.write_text("".join(sentences).capitalize(), encoding="utf-8")
    return str(path)


def test_char_lm_beats_the_unigram_entropy_it_prints(tmp_path, capsys):
    example = load_example("char_lm")
    text_file = generated_text(tmp_path / "text.txt")
    status = example.main([
        "--text-file", text_file, "--length", "64", "--layers", "2", "--hidden", "32",
        "--heads", "2", "--min-window", "4", "--epochs", "5", "--learning-rate", "1e-2",
    ])
    out = capsys.readouterr().out
    assert status == 0, out
    bpc = float(re.search(r"held-out bits per character: ([0-9.]+)", out).group(1))
    unigram = float(re.search(r"unigram entropy \(no context\): ([0-9.]+)", out).group(1))
    uniform = float(re.search(r"uniform: ([0-9.]+)", out).group(1))
    print(f"bits per character {bpc:.3f}, unigram entropy {unigram:.3f}, uniform {uniform:.3f}")
    assert unigram < uniform
    assert bpc < unigram, out
    # A sample follows: the held-out text's first 16 characters, continued to --length.
    prompt, continuation = (
        ast.literal_eval(part) for part in re.search(r"sample: ('.*') -> ('.*')", out).groups()
    )
    with open(text_file, encoding="utf-8") as file:
        text = file.read()
    held_out = text[int(len(text) * (1 - 0.1)) :]  # the example's default --holdout
    assert prompt == held_out[:16]
    assert len(continuation) == 64 - 16


# === "65,536 tokens ... in about N GB" ===

# The README's configuration ("The attention, exactly"): one sequence of
# 65,536 tokens, 4 heads (of 64), window 256, dilation [1, 1, 2, 2], a
# padding mask and one global token.
def readme_peak_gib():
    """The figure the README states: "65,536 tokens (...) add about N GiB"."""
    with open(os.path.join(ROOT, "README.md")) as readme:
        text = " ".join(readme.read().split())
    match = re.search(r"65,536 tokens \([^)]*\) add about ([0-9.]+) GiB", text)
    assert match, "README no longer states the 65,536-token memory"
    return float(match.group(1))


MEMORY_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    from keras_longformer.ops import longformer_attention

    def rss_kib(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])

    length, heads, head_dim = 65536, 4, 64
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, length, heads, head_dim)).astype("float32")
               for _ in range(3))
    padding_mask = np.ones((1, length), bool)
    global_mask = np.zeros((1, length), bool)
    global_mask[0, 0] = True
    kwargs = dict(window=256, dilation=[1, 1, 2, 2], causal=False)
    # A short call first, so that TensorFlow's runtime is in the baseline.
    longformer_attention(q[:, :1024], k[:, :1024], v[:, :1024], padding_mask=padding_mask[:, :1024],
                         global_mask=global_mask[:, :1024], **kwargs)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the peak (VmHWM) restarts from here
    baseline = rss_kib("VmRSS")
    out = np.asarray(longformer_attention(q, k, v, padding_mask=padding_mask,
                                          global_mask=global_mask, **kwargs))
    print(rss_kib("VmHWM") - baseline, bool(np.isfinite(out).all()), out.shape)
    """
)


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"),
    reason="peak RSS is read from Linux's /proc/self/status (VmHWM, reset through clear_refs)",
)
def test_65536_tokens_use_the_memory_the_readme_states():
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    peak_kib, finite, _ = result.stdout.split(maxsplit=2)
    peak_gib = int(peak_kib) / 2**20
    print(f"65,536 tokens: the call's peak resident memory {peak_gib:.2f} GiB")
    assert finite == "True"
    # "About": within 20% of the figure, either way.
    stated = readme_peak_gib()
    assert 0.8 * stated <= peak_gib <= 1.2 * stated, (peak_gib, stated)


# === Installs that never fight ===

PLATFORMS = {
    "Linux x86_64": dict(platform_system="Linux", platform_machine="x86_64", sys_platform="linux"),
    "Linux aarch64": dict(platform_system="Linux", platform_machine="aarch64", sys_platform="linux"),
    "macOS arm64": dict(platform_system="Darwin", platform_machine="arm64", sys_platform="darwin"),
    "macOS x86_64": dict(platform_system="Darwin", platform_machine="x86_64", sys_platform="darwin"),
    "Windows": dict(platform_system="Windows", platform_machine="AMD64", sys_platform="win32"),
}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib (to read pyproject.toml) is Python 3.11+")
def test_exactly_one_onnxruntime_on_every_platform():
    import tomllib

    from packaging.requirements import Requirement

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        project = tomllib.load(file)["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += [Requirement(text) for text in extra]
    expected = {"Linux x86_64": "onnxruntime-gpu"}
    for platform, environment in PLATFORMS.items():
        chosen = [
            r.name for r in requirements
            if r.name in ("onnxruntime", "onnxruntime-gpu")
            and (r.marker is None or r.marker.evaluate(dict(environment, extra="test")))
        ]
        assert chosen == [expected.get(platform, "onnxruntime")], (platform, chosen)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib (to read pyproject.toml) is Python 3.11+")
def test_every_package_on_disk_ships_in_the_wheel():
    """pyproject.toml lists the packages by hand (`export/` installs as
    `keras_longformer.export`); an editable install finds any directory, a
    wheel only those listed (`keras_longformer.bench` was missing once)."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        setuptools_config = tomllib.load(file)["tool"]["setuptools"]
    listed = set(setuptools_config["packages"])
    on_disk = set()
    for package, directory in setuptools_config["package-dir"].items():
        for parent, children, files in os.walk(os.path.join(ROOT, directory)):
            children[:] = [c for c in children if c != "__pycache__"]
            if "__init__.py" in files:
                relative = os.path.relpath(parent, os.path.join(ROOT, directory))
                on_disk.add(package if relative == "." else f"{package}.{relative.replace(os.sep, '.')}")
    assert listed == on_disk


@pytest.mark.parametrize("installed", ["missing", "incomplete"])
def test_onnx_session_names_the_fix_when_onnxruntime_is_unusable(installed, monkeypatch, tmp_path):
    from keras_longformer.export import onnx_session

    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    module = None if installed == "missing" else types.ModuleType("onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxruntime", module)
    with pytest.raises(ImportError) as info:
        onnx_session(path, provider="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "onnxruntime-gpu" in message and "exactly one" in message, message
