"""The README's two fresh-machine commands are the ones CI and users actually run."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    fresh = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", fresh, flags=re.DOTALL)]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    main_job, tests = _readme_commands()
    assert "babelclip eval" in main_job and main_job.startswith("scripts/setup.sh")
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()
