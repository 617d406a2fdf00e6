#!/usr/bin/env bash
# Trains the three shipped float models one after another on one thread
# (~55-70 min on one core of a 2-core VM). Logs go to /tmp/train-<arch>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-training/.venv/bin/python}
$PY training/train.py --arch deepconvnet --epochs 40 --seed 1 --out models/deepconvnet-float.safetensors > /tmp/train-deepconvnet.log 2>&1
$PY training/train.py --arch resnet      --epochs 40 --seed 2 --out models/resnet-float.safetensors      > /tmp/train-resnet.log 2>&1
$PY training/train.py --arch inception   --epochs 20 --seed 1 --out models/inception-float.safetensors   > /tmp/train-inception.log 2>&1
