#!/bin/bash
# The GPU path in one run (under 10 minutes on one CUDA GPU): official and fine-tuning tests, parity with the
# reference on CUDA, then full-size sampling and training measurements (benchmarks/gpu_check.py).
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (AMODAL_SHARED: the shared folder, for the parity vectors)
set -u
OUT=${1:-gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
timeout 180 $PY -m pytest -q tests/test_official.py tests/test_svd_training.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?" | tee -a "$OUT/summary.txt"
timeout 60 $PY - > "$OUT/parity_cuda.json" 2> "$OUT/parity_cuda.log" <<'PYEOF'
import json, os, pathlib, numpy as np, torch
from amodal.checkpoints.official.config import GenerationConfig, RuntimeConfig
from amodal.checkpoints.official.model import load_official_model
root = pathlib.Path(os.environ.get("AMODAL_OFFICIAL_FIXTURE", pathlib.Path(os.environ.get("AMODAL_SHARED", "../shared")) / "fixtures/official_tiny"))
meta = json.loads((root / "meta.json").read_text())
inputs = {k: torch.from_numpy(v) for k, v in np.load(root / "inputs.npz").items()}
expected = np.load(root / "expected.npz")
model = load_official_model(root / "checkpoint", RuntimeConfig(device="cuda", dtype="float32"))
out = {}
for g in meta["guidance_scales"]:
    s = GenerationConfig(steps=meta["num_inference_steps"], min_guidance=g, max_guidance=g, fps=meta["fps"],
                         motion_bucket_id=meta["motion_bucket_id"], noise_aug_strength=meta["noise_aug_strength"], decode_chunk_size=4)
    frames = model.generate(inputs["modal"], inputs["depth"], s, noise=inputs["latents"], progress=False)[0].cpu().numpy()
    out[str(g)] = float(np.abs(frames - expected[f"frames_guidance_{g:.1f}"]).max())
print(json.dumps({"cuda_max_abs_error": out}))
PYEOF
echo "parity rc=$? $(cat "$OUT/parity_cuda.json")" | tee -a "$OUT/summary.txt"
timeout 420 $PY benchmarks/gpu_check.py --device cuda --out "$OUT/gpu_check.json" > "$OUT/gpu_check.log" 2>&1
echo "gpu_check rc=$?" | tee -a "$OUT/summary.txt"
grep '^{' "$OUT/gpu_check.log" | tee -a "$OUT/summary.txt"
