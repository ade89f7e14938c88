"""Worker-process entry point: ``python -m cloud_api.training.train_proc model train ...`` runs the ``fieldline``
CLI with a plain progress line every ``FIELDLINE_PROGRESS_S`` seconds of training (default 2) instead of 30, so
the runner can follow a short job."""

from __future__ import annotations

import os


def main() -> None:
    import models.train

    models.train.PLAIN_LINE_S = float(os.environ.get("FIELDLINE_PROGRESS_S", "2"))
    from fieldline.cli import main as fieldline_main

    fieldline_main()


if __name__ == "__main__":
    main()
