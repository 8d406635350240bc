"""The README's commands and examples run exactly as written."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def fenced(language):
    """Bodies of the README's fenced blocks opened with ```<language>."""
    blocks, body, lang = [], None, None
    for line in README.splitlines():
        if line.startswith("```"):
            if body is None:
                body, lang = [], line[3:].strip()
            else:
                if lang == language:
                    blocks.append("\n".join(body) + "\n")
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def test_ci_runs_the_readme_test_command():
    test_commands = [line for block in fenced("bash") for line in block.splitlines()
                     if line.rstrip().endswith("&& pytest")]
    assert test_commands, "the README names no test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert all(command in ci for command in test_commands)


def test_main_command_prints_what_the_readme_shows():
    main = next(line for block in fenced("bash") for line in block.splitlines()
                if "pip install -e . &&" in line)
    command = main.split("&& ")[-1].split()
    assert command[:3] == ["python", "-m", "distillbt"]
    run = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    shown = next(block for block in fenced("") if block.startswith("source: sample"))
    printed = run.stdout.splitlines()
    # Every line the README shows is printed as shown (scores are deterministic per seed), except
    # the timings line; "…" stands for lines left out.
    for line in shown.strip().splitlines():
        if line.strip() == "…" or " s before survivors (" in line:
            continue
        assert line in printed, f"README shows a line the main command does not print:\n{line}"


def test_python_examples_run(tmp_path):
    for block in fenced("python"):
        run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
        assert run.returncode == 0, f"README example failed:\n{block}\n{run.stderr}"
