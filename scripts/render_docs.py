"""Re-run the shell commands shown in the docs and paste their real output.

Every fenced block that starts with ```console is rewritten: each line
beginning with ``$ `` is run (from the repository root, with ``.venv/bin``
first on PATH) and the lines after it, up to the next ``$ `` line or the end of
the block, are replaced by what the command printed (stdout and stderr).

    python scripts/render_docs.py docs/getting-started.md README.md

Timings in the output change from run to run; everything else should not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```console\n(.*?)^```\n", re.S | re.M)


def run(command: str) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "100"
    done = subprocess.run(command, shell=True, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.stdout


def render_block(block: str) -> str:
    """The block with every ``$ `` command's output re-run; a block with no
    such line is a listing, not a transcript, and is left as it is."""
    if not any(line.startswith("$ ") for line in block.splitlines()):
        print("  (a console block without '$ ' lines is left as it is; use ```sh for plain commands)")
        return block
    out: list[str] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append(line)
            out.extend(run(line[2:]).rstrip("\n").splitlines())
    return "\n".join(out) + "\n"


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        text = path.read_text()
        new = FENCE.sub(lambda m: "```console\n" + render_block(m.group(1)) + "```\n", text)
        path.write_text(new)
        print(f"rendered {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
