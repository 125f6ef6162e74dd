"""benchmarks/gpu.py runs on CPU (``--cpu-smoke``: tiny sizes, array-api-strict as the device)
and its device path agrees with numpy there."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

pytest.importorskip("array_api_strict")
SCRIPT = pathlib.Path(__file__).parents[2] / "benchmarks" / "gpu.py"


def test_gpu_benchmark_cpu_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("emkit_gpu_benchmark", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--cpu-smoke", "--repeat", "1", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert results["device"].startswith("array-api-strict")
    names = [row["workload"] for row in results["rows"]]
    assert names[:2] == ["ISV iteration", "JFA iteration"] and "PLDA scoring" in names
    assert [n.split(" (")[0] for n in names if n.startswith("i-vector")] == [
        "i-vector T iteration", "i-vector projection"]
    assert sum(n.startswith("GMM ML iteration") for n in names) == 3  # two sizes and streamed
    assert any(n.startswith("k-means Lloyd iteration") for n in names)
    for row in results["rows"]:
        assert row["float64"]["rel_diff"] <= 1e-10 and row["float32"]["rel_diff"] <= 1e-5
    assert results["not_ported"] == []  # every workload of issue 13 has its device path
    assert "GMM ML iteration" in capsys.readouterr().out
