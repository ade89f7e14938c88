"""`fieldline model ...`: the verb groups of :mod:`models.cli` mounted on one Typer app (thin wrappers over the library).

data: synth, import, stats · train · export: export, quantize · evaluate: eval, predict, bench · card ·
calibrate · anomaly (fit, quantize, combine, eval).
"""

from __future__ import annotations

import typer

from models.cli import card, data, evaluate, export, train
from models.cli.anomaly import anomaly_app
from models.cli.calibrate import calibrate_cmd

model_app = typer.Typer(help="Synthetic data, training, export, INT8 quantisation, evaluation, model cards.",
                        no_args_is_help=True, add_completion=False)

model_app.command("synth")(data.synth)
model_app.command("train")(train.train)
model_app.command("export")(export.export)
model_app.command("quantize")(export.quantize)
model_app.command("eval")(evaluate.eval_)
model_app.command("card")(card.card)
model_app.command("import")(data.import_cmd)
model_app.command("stats")(data.stats_cmd)
model_app.command("predict")(evaluate.predict_cmd)
model_app.command("bench")(evaluate.bench_cmd)
model_app.command("calibrate")(calibrate_cmd)
model_app.add_typer(anomaly_app, name="anomaly")
