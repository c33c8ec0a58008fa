#!/usr/bin/env bash
# The README's GPU figures, in one go, on a machine with a CUDA GPU (run from the repository's root):
#
#   bash benchmarks/gpu_figures.sh [MNIST_FOLDER] [LOG_FOLDER]
#
# MNIST_FOLDER holds MNIST/raw/ (default ../shared/data/mnist); logs go to LOG_FOLDER (default runs/gpu).
# It runs the CUDA tests, profiles a training step, times the course's training against the
# assignment's loop (one epoch each, then a whole 30-epoch run) and runs notebook 3 headless.
set -uo pipefail
data=${1:-../shared/data/mnist}
logs=${2:-runs/gpu}
epochs=${FULL_RUN:-30}
python=${PYTHON:-python3}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.is_available())"
  "$python" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_training.py tests/test_data.py
  "$python" benchmarks/profile_step.py
  "$python" benchmarks/train_throughput.py --data-dir "$data" --full-run "$epochs" 2>"$logs/progress_bars.txt"
  DAE_DATA_DIR="$data" "$python" -m dae_utils.course run --notebooks 03 --output-dir "$logs/course" \
    2>>"$logs/progress_bars.txt"
} 2>&1 | tee "$logs/gpu_figures.txt"
