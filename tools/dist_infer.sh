#!/usr/bin/env bash
# Distributed inference with torchrun: the inputs (images or slides of a
# file or folder) are shared among N processes, each writing its own
# outputs (gloo on CPU, NCCL on GPU):
#   dist_infer.sh CONFIG INPUT N --out OUT [tools/infer.py ARGS...]
CONFIG=$1
INPUT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

PYTHONPATH="$ROOT:$PYTHONPATH" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/infer.py" \
    "$CONFIG" \
    "$INPUT" \
    --launcher pytorch "${@:4}"
