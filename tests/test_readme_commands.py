"""Every command the README shows runs, as written but with tiny sizes.

The commands are read from the README's ``bash`` blocks (continuation lines joined, comments and
``[optional]`` parts dropped), sizes shrunk (``--runs``, ``--trials``, ``--epochs``, ``--budget``,
``--archs``), and placeholders replaced by files the test writes in the same formats: ``STORE`` a
store holding an imported CIFAR-10-layout table (a fresh empty folder for the commands that write
into a store; for ``surrogate``, a partial size-space table of 60 trained configurations), the
NATS-Bench archive a tiny archive of the official layout, the CSV a synthetic table of the
published layout. A command the README shows that this test cannot map fails it, so
README and CLI cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from surrogate_fixtures import synthetic_rows

from benchmark_data import schema
from benchmark_data.writer import write_fragment
from nats_fixtures import write_archive
from sim_fixtures import synthetic_table
from spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ARCHIVE = "NATS-tss-v1_0-3ffb9-simple/"
CSV = "nats_tss_cifar10_test_acc_200ep.csv"
# flag -> tiny value; per mode where the meaning differs
TINY = {"--runs": "2", "--trials": "2", "--epochs": "1", "--budget": "30ev", "--archs": "2"}
TINY_ONESHOT = {"--runs": "1"}
WRITES_A_STORE = (("benchmark_data", "import"), ("benchmark_data", "build"))


def readme_commands() -> list[str]:
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line).strip()
            if line.startswith("python "):
                commands.append(re.sub(r"\s*\[[^\]]*\]", "", line))  # optional parts out
    return commands


def _shrunk(argv: list[str], tiny: dict[str, str]) -> list[str]:
    out = list(argv)
    for i, a in enumerate(out[:-1]):
        if a in tiny:
            out[i + 1] = tiny[a]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("readme")
    tss = get_space("tss")
    values = synthetic_table().final * 0.5 + 45
    csv = tmp / CSV
    csv.write_text("index,arch,test_acc\n" + "".join(f"{i},{tss.to_str(i)},{v:.4f}\n" for i, v in enumerate(values)))
    store = tmp / "store"
    r = subprocess.run([sys.executable, "-m", "benchmark_data", "import", str(csv), "--store", str(store),
                        "--dataset", "cifar10", "--hp", "200", "--quiet"], capture_output=True, text=True, cwd=tmp)
    assert r.returncode == 0, r.stderr
    archive = write_archive(tmp / "archive", "tss", num_archs=3)
    partial = tmp / "partial"
    write_fragment(partial, "epochs", synthetic_rows(60, hp=12), metadata=schema.provenance())
    return {"csv": csv, "store": store, "archive": archive, "tmp": tmp, "partial": partial}


def test_the_readme_shows_every_mode_and_store_command():
    commands = readme_commands()
    for start in ("python orchestrate.py --searcher bohb --budget 2e4s", "python orchestrate.py simulate",
                  "python orchestrate.py train", "python orchestrate.py oneshot", "python -m benchmark_data info",
                  "python -m benchmark_data query", "python -m benchmark_data compact",
                  "python -m benchmark_data import", "python -m benchmark_data build",
                  "python -m benchmark_data surrogate", "python orchestrate.py simulate --space sss"):
        assert any(c.startswith(start) for c in commands), start
    assert not any("--benchmark" in c or "--mode" in c for c in commands)  # the old spellings


@pytest.mark.ray
@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_runs(command, files, tmp_path):
    argv = shlex.split(command)[1:]  # drop "python"
    module = argv[1] if argv[0] == "-m" else None
    sub = argv[2] if module else (argv[1] if len(argv) > 1 and not argv[1].startswith("-") else "simulate")
    tiny = {**TINY, **(TINY_ONESHOT if sub == "oneshot" else {})}
    argv = _shrunk(argv, tiny)
    writes = (module, sub) in WRITES_A_STORE
    source = files["partial"] if (module, sub) == ("benchmark_data", "surrogate") else files["store"]
    store = tmp_path / "new-store" if writes else shutil.copytree(source, tmp_path / "store")
    argv = [str(store) if a == "STORE" else a for a in argv]
    argv = [str(files["archive"]) if a == ARCHIVE else str(files["csv"]) if a == CSV else a for a in argv]
    if any(a.isupper() and a.isalpha() for a in argv):
        pytest.fail(f"placeholder this test cannot fill in: {command}")
    if module is None and "--help" not in argv:
        argv += ["--out", str(tmp_path / "out"), "--quiet"]
    if sub == "build":
        argv += ["--epochs", "1", "--workers", "0", "--quiet"]  # two one-epoch trainings, in-process
    if sub == "surrogate":
        argv += ["--model", "random-forest", "--folds", "2", "--quiet"]  # one small model, not four
    r = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{' '.join(argv)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr
