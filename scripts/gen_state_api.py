"""Write docs/state-api.md from the State class's docstrings (synth_reward.envs.describe.state_api_markdown).

python scripts/gen_state_api.py            # rewrite docs/state-api.md
python scripts/gen_state_api.py --check    # exit 1 if it is out of date (tests/test_docs.py does the same)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout this script lives in, whichever copy is installed

from synth_reward.envs.describe import state_api_markdown  # noqa: E402

DOC = ROOT / "docs" / "state-api.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the file differs")
    args = parser.parse_args()
    text = state_api_markdown()
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run `python scripts/gen_state_api.py`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
