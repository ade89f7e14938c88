"""The shell commands shown in README.md and docs/ work, so they cannot rot.

Every line of a ```bash block is one command, and each is classified here:

- cheap ``fieldline`` commands (RUN) run for real, in order, in a scratch folder per page (where ``models``,
  ``deploy``, ``scripts`` and ``bench`` point at the repository and ``yaml`` blocks headed ``# file: NAME`` are
  written out first), and must exit 0;
- ``fieldline`` commands too slow to run here or needing a camera, a broker or a person (HELP_ONLY) have each
  of their flags checked against ``fieldline <verb> --help``, and the repository files they name must exist;
- anything else must match one of OTHER_COMMANDS, each with the reason it is not run and the check it gets.

A command that fits none of these fails the test, and so does a shell block tagged other than ``bash``.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import signal
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import typer

from tests.docs.markdown_docs import REPO, commands, doc_files, fenced_blocks, rel, yaml_files

VENV_BIN = Path(sys.executable).parent
FIELDLINE = VENV_BIN / "fieldline"
LINKED = ("models", "deploy", "scripts", "bench", "mobile_app", ".venv")

RUN = {  # verb paths cheap enough to run: seconds, no network, nothing written outside the scratch folder
    (), ("config", "validate"), ("config", "schema"), ("contract", "schema"), ("device", "list"),
    ("model", "synth"), ("model", "stats"), ("model", "eval"), ("model", "predict"), ("model", "bench"),
}

HELP_ONLY = {  # verb path -> why it is not run in a test
    ("demo",): "serves until stopped (tests/e2e/test_demo.py runs it)",
    ("edge", "run"): "needs a camera and a broker (tests/e2e)",
    ("edge", "doctor"): "checks a real broker, cameras and the clock",
    ("api", "serve"): "a server that runs until stopped",
    ("api", "user-add"): "asks for a password",
    ("app",): "opens a window",
    ("device", "add"): "writes the broker's password file and ACL",
    ("model", "train"): "minutes of training (needs the train extra)",
    ("model", "export"): "needs a trained checkpoint",
    ("model", "quantize"): "calibrates and checks on hundreds of frames",
    ("model", "calibrate"): "hundreds of frames, and writes into the model file",
    ("model", "card"): "rewrites a model card",
    ("model", "anomaly", "fit"): "minutes of training",
    ("model", "anomaly", "quantize"): "needs a fitted model",
    ("model", "anomaly", "eval"): "needs defect and defect-free picture folders",
    ("model", "anomaly", "combine"): "needs fitted models",
    ("data", "pull"): "needs a running cloud API (tests/fieldline/test_cli_data.py)",
    ("data", "push"): "needs a running cloud API (tests/fieldline/test_cli_data.py)",
    ("data", "stats"): "needs a running cloud API (tests/fieldline/test_cli_data.py)",
}


def argv_of(command: str) -> list[str]:
    """The command's words, without leading VAR=value assignments."""
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    return words


def is_fieldline(words: list[str]) -> bool:
    return bool(words) and Path(words[0]).name == "fieldline"


@lru_cache(maxsize=1)
def cli():
    from fieldline.cli import app

    return typer.main.get_command(app)


def verb_path(words: list[str]) -> tuple[str, ...]:
    """``fieldline model anomaly fit --out x`` -> ("model", "anomaly", "fit")."""
    node, path = cli(), []
    for word in words[1:]:
        if word in getattr(node, "commands", {}):  # a group (typer vendors its own click)
            node = node.commands[word]
            path.append(word)
        else:
            break
    return tuple(path)


def flags(words: list[str]) -> set[str]:
    return {w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", w)}


_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


@lru_cache(maxsize=None)
def fieldline_help_flags(path: tuple[str, ...]) -> frozenset[str]:
    """Every option ``fieldline <path> --help`` lists (run in-process: an interpreter start per verb is slow)."""
    from typer.testing import CliRunner

    from fieldline.cli import app

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, f"fieldline {' '.join(path)} --help: {result.output}"
    return frozenset(_OPTION.findall(result.output))


@lru_cache(maxsize=None)
def script_flags(script: str) -> frozenset[str]:
    """The options a bench script's argparse parser defines (read from its source: importing some of them
    takes seconds)."""
    tree = ast.parse((REPO / script).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return frozenset(found | {"-h", "--help"})


def check_fieldline_flags(words: list[str]) -> list[str]:
    path = verb_path(words)
    listed = fieldline_help_flags(path)
    return [f"`fieldline {' '.join(path)}` has no option {f}" for f in sorted(flags(words) - listed)]


def repo_paths_exist(words: list[str]) -> list[str]:
    """Repository files a command names (by their top folder and a file extension) must exist."""
    missing = []
    for word in words:
        word = word.split("=", 1)[-1]
        if "*" in word or "/" not in word or not re.search(r"\.\w+$", word):
            continue
        if word.split("/")[0] in ("models", "deploy", "scripts", "bench", "mobile_app", "docs", "tests") \
                and not (REPO / word).exists():
            missing.append(f"{word} does not exist")
    return missing


# ---------------------------------------------------------------- commands that are not `fieldline`
def _script_passes_args(script: str, target: str) -> list[str]:
    text = (REPO / script).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if target in line and '"$@"' in line]
    return [] if lines else [f"{script} does not hand its arguments to {target}"]


def check_demo_sh(words: list[str]) -> list[str]:
    # it runs `fieldline demo` with the arguments given, so they are fieldline demo's options
    return _script_passes_args("scripts/demo.sh", "fieldline demo") + check_fieldline_flags(
        [str(FIELDLINE), "demo", *words[2:]])


def check_test_sh(words: list[str]) -> list[str]:
    errors = _script_passes_args("scripts/test.sh", "pytest")
    errors += [f"{w} does not exist" for w in words[2:] if not w.startswith("-") and not (REPO / w).exists()]
    return errors


def check_setup_sh(words: list[str]) -> list[str]:
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    wanted = words[2].split(",") if len(words) > 2 else []
    return [f"no extra {e!r} in pyproject.toml" for e in wanted if e not in extras]


def check_bench(words: list[str]) -> list[str]:
    script = next(w for w in words if w.startswith("bench/"))
    listed = script_flags(script)
    return repo_paths_exist(words) + [f"{script} has no option {f}" for f in sorted(flags(words) - listed)]


def check_compose(words: list[str]) -> list[str]:
    made_by_you = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "--env-file"}  # from .env.example
    errors = repo_paths_exist([w for w in words if w not in made_by_you])
    if "exec" in words:  # docker compose ... exec SERVICE fieldline ...: the inner command's flags
        inner = words[words.index("exec") + 2:]
        if is_fieldline(inner):
            errors += check_fieldline_flags(inner)
    return errors


def check_curl(words: list[str]) -> list[str]:
    urls = [w for w in words if w.startswith("http://127.0.0.1:8000/")]
    return [] if urls else ["curl without an http://127.0.0.1:8000/ address (tests/docs/test_readme.py checks those)"]


OTHER_COMMANDS = [  # (pattern, why it is not run here, check)
    (r"bash scripts/demo\.sh\b", "serves until stopped", check_demo_sh),
    (r"bash scripts/test\.sh\b", "the whole suite", check_test_sh),
    (r"bash scripts/setup\.sh( [\w,]+)?$", "installs packages", check_setup_sh),
    (r"bash scripts/bench-setup\.sh$", "installs Debian packages", lambda w: repo_paths_exist(w[1:])),
    (r"bash models/recipes/[\w-]+\.sh$", "trains for minutes", repo_paths_exist),
    (r"(\.venv/bin/)?python bench/\w+\.py\b", "a benchmark: minutes of load", check_bench),
    (r"\.venv/bin/mkdocs (serve|build)\b", "test_docs_site.py builds the site", lambda w: []),
    (r"curl\b", "needs a running API; its address is checked in test_readme.py", check_curl),
    (r"docker compose -f deploy/compose\.yaml\b", "needs Docker", check_compose),
    (r"deploy/mosquitto/make-certs\.sh\b", "writes a CA and keys", repo_paths_exist),
    (r"sudo\b", "changes the system", repo_paths_exist),
    (r"pip install buildozer cython$", "downloads packages", lambda w: []),
    (r"cd mobile_app && buildozer android debug$", "needs the Android SDK and NDK", lambda w: []),
    (r"adb install\b", "needs a phone", lambda w: []),
]


def classify(command: str) -> str:
    words = argv_of(command)
    if is_fieldline(words):
        path = verb_path(words)
        return "run" if path in RUN else "help" if path in HELP_ONLY else "unknown"
    for pattern, _, _ in OTHER_COMMANDS:
        if re.match(pattern, command):
            return "other"
    return "unknown"


def doc_commands(path: Path) -> list[tuple[int, str]]:
    found = []
    for block in fenced_blocks(path.read_text(encoding="utf-8")):
        if block.lang == "bash":
            found += [(block.line, c) for c in commands(block)]
    return found


PAGES = [p for p in doc_files() if doc_commands(p)]


def test_shell_blocks_are_tagged_bash_and_untagged_blocks_hold_no_commands() -> None:
    errors = []
    for path in doc_files():
        for block in fenced_blocks(path.read_text(encoding="utf-8")):
            if block.lang in ("sh", "shell", "console", "zsh", "shell-session", "text") and any(
                    line.strip().startswith(("fieldline", "bash ", "$ ")) for line in block.lines):
                errors.append(f"{rel(path)}:{block.line}: shell commands in a ```{block.lang} block; tag it bash")
            if block.lang == "" and any(line.strip().startswith(("fieldline ", "$ ")) for line in block.lines):
                errors.append(f"{rel(path)}:{block.line}: commands in an untagged block; tag it bash")
    assert errors == []


def test_every_command_is_run_or_checked() -> None:
    unknown = [f"{rel(p)}:{line}: {c}" for p in doc_files() for line, c in doc_commands(p) if classify(c) == "unknown"]
    assert unknown == [], "add these to OTHER_COMMANDS with a reason and a check, or make them fieldline commands"


def test_the_docs_show_commands_of_each_kind() -> None:
    kinds = {classify(c) for p in doc_files() for _, c in doc_commands(p)}
    assert {"run", "help", "other"} <= kinds


@pytest.mark.parametrize("path", PAGES, ids=rel)
def test_commands_not_run_here_use_only_options_that_exist(path: Path) -> None:
    errors = []
    for line, command in doc_commands(path):
        words = argv_of(command)
        kind = classify(command)
        if kind == "help":
            errors += [f"{rel(path)}:{line}: {e}" for e in check_fieldline_flags(words) + repo_paths_exist(words)]
        elif kind == "other":
            check = next(c for p, _, c in OTHER_COMMANDS if re.match(p, command))
            errors += [f"{rel(path)}:{line}: {e}" for e in check(words)]
    assert errors == []


@pytest.mark.parametrize("path", PAGES, ids=rel)
def test_cheap_commands_run(path: Path, tmp_path: Path) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(REPO / name)
    for name, content in yaml_files(path.read_text(encoding="utf-8")).items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    env = {k: v for k, v in env.items() if not k.startswith("FIELDLINE__")}
    for line, command in doc_commands(path):
        if classify(command) != "run":
            continue
        proc = subprocess.Popen(command, shell=True, executable="/bin/bash", cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the shell and everything it started
            proc.communicate()
            pytest.fail(f"{rel(path)}:{line}: {command} ran over 120 s")
        assert proc.returncode == 0, f"{rel(path)}:{line}: {command}\n{out[-2000:]}\n{err[-2000:]}"


def test_the_classifier_rejects_what_it_does_not_know() -> None:
    """A made-up verb or tool is neither run nor waved through."""
    assert classify("rm -rf build") == "unknown"
    assert classify("fieldline model frobnicate") == "unknown"
    assert classify("fieldline model eval --model m.onnx") == "run"
    assert classify("fieldline model train --data d") == "help"
    assert check_fieldline_flags(argv_of("fieldline model train --no-such-flag 3")) == [
        "`fieldline model train` has no option --no-such-flag"]
    assert check_bench(argv_of("python bench/models.py --no-such-flag")) == ["bench/models.py has no option --no-such-flag"]
    assert repo_paths_exist(["deploy/examples/none.yaml"]) == ["deploy/examples/none.yaml does not exist"]


def inline_fieldline_commands(path: Path) -> list[tuple[int, str]]:
    """``fieldline …`` written in a code span in the prose, e.g. ``fieldline model eval --input-size N``."""
    from tests.docs.markdown_docs import without_fences

    found = []
    for number, line in enumerate(without_fences(path.read_text(encoding="utf-8")), 1):
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"(\.venv/bin/)?fieldline( |$)", span):
                found.append((number, span))
    return found


def check_inline(span: str) -> list[str]:
    words = argv_of(span.replace("…", ""))
    path = verb_path(words)
    node = cli()
    for word in path:
        node = node.commands[word]
    rest = words[1 + len(path):]
    if hasattr(node, "commands") and rest and not rest[0].startswith("-"):
        return [f"`fieldline {' '.join(path)}` has no command {rest[0]!r}"]
    return check_fieldline_flags(words) if not hasattr(node, "commands") else []


@pytest.mark.parametrize("path", doc_files(), ids=rel)
def test_fieldline_commands_named_in_the_prose_exist_with_their_options(path: Path) -> None:
    errors = [f"{rel(path)}:{line}: {e}" for line, span in inline_fieldline_commands(path) for e in check_inline(span)]
    assert errors == []


def test_the_inline_check_finds_a_verb_that_moved() -> None:
    assert check_inline("fieldline doctor") == ["`fieldline ` has no command 'doctor'"]
    assert check_inline("fieldline edge doctor --config a.yaml") == []
    assert check_inline("fieldline model eval --size 3") == ["`fieldline model eval` has no option --size"]


@pytest.mark.parametrize("path", doc_files(), ids=rel)
def test_scripts_named_in_the_prose_take_the_arguments_shown(path: Path) -> None:
    """``bash scripts/setup.sh app`` in a sentence needs an `app` extra, like one in a bash block."""
    from tests.docs.markdown_docs import without_fences

    spans = re.findall(r"`(bash scripts/[^`]+)`", " ".join(without_fences(path.read_text(encoding="utf-8"))))
    errors = []
    for span in spans:
        matches = [(p, c) for p, _, c in OTHER_COMMANDS if re.match(p, span)]
        errors += [f"{span}: {e}" for e in (matches[0][1](argv_of(span)) if matches else ["not a known script"])]
    assert errors == []
