"""Worker-process entry point: ``python -m cloud_api.training.train_proc model train ...`` runs the ``fieldline``
CLI with a plain progress line every ``FIELDLINE_PROGRESS_S`` seconds of training (default 2) instead of 30, so
the runner can follow a short job. ``--shape-flags FILE`` prints the ``model train`` options that build the
network of a FieldLine ONNX file (PyTorch stays out of the API process); ``--evaluate JSON`` prints the mAP50 of
several ``{model, data, format?, split?, count?, seed?}`` in one process (``models.detect.evaluate.evaluate``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    if sys.argv[1:2] == ["--shape-flags"]:  # the `model train` options that build an ONNX file's network
        from models.detect.onnx_init import read_onnx_weights, shape_flags

        convs, scales, _ = read_onnx_weights(Path(sys.argv[2]))
        print(shape_flags(convs, len(scales)))
        return
    if sys.argv[1:2] == ["--evaluate"]:  # several (model, data) mAP50s in one process: one import, one start
        from models.data.sources import DataSource
        from models.detect.evaluate import evaluate

        results = []
        for item in json.loads(sys.argv[2]):
            src = DataSource.parse(item["data"], item.get("format"))
            res = evaluate(item["model"], data=src, count=item.get("count"), seed=item.get("seed", 9001),
                           split=item.get("split", "test"))
            results.append({"map50": res["map50"], "map50_95": res["map50_95"], "images": res["images"]})
        print(json.dumps(results))
        return
    import models.detect.train

    models.detect.train.PLAIN_LINE_S = float(os.environ.get("FIELDLINE_PROGRESS_S", "2"))
    from fieldline.cli import main as fieldline_main

    fieldline_main()


if __name__ == "__main__":
    main()
