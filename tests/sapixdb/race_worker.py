"""A separate process appending to one strand: ``python race_worker.py URL AGENT N TAG``."""

from __future__ import annotations

import sys

from sapixdb import SapixClient


def main() -> None:
    url, agent, count, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with SapixClient(url=url) as db:
        for n in range(count):
            db.collection(agent).write({"tag": tag, "n": n})


if __name__ == "__main__":
    main()
