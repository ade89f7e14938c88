"""The detector's softplus as exported (Exp -> Add -> Log, clamped): equal to torch's where boxes live, finite beyond."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
# the train extra is in the test environment (scripts/test.sh): a missing or broken torch fails, never skips
import torch

from models.detect.net import softplus


class _Softplus(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return softplus(x)


def test_exported_softplus_matches_torch_and_never_overflows() -> None:
    buf = io.BytesIO()
    torch.onnx.export(_Softplus(), (torch.zeros(1, 8),), buf, dynamo=False, opset_version=17, input_names=["x"],
                      dynamic_axes={"x": {1: "n"}})
    model = onnx.load_from_string(buf.getvalue())
    assert {n.op_type for n in model.graph.node} >= {"Exp", "Log"} and "Softplus" not in {
        n.op_type for n in model.graph.node}
    x = np.array([[-100.0, -20.0, -1.0, 0.0, 0.5, 3.0, 30.0, 79.0, 200.0, 1e6]], np.float32)
    got = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = torch.nn.functional.softplus(torch.from_numpy(x)).numpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[:, :8], want[:, :8], rtol=1e-5, atol=1e-6)  # up to the clamp: torch's values
    np.testing.assert_allclose(got[:, 8:], 80.0, rtol=1e-6)  # beyond it: 80 (x 8 or 16 px: far past any input)
    assert np.array_equal(softplus(torch.from_numpy(x)).numpy(), want)  # training keeps torch's own softplus
