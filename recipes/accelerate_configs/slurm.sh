#!/bin/bash
# SLURM: 2 nodes x 8 GPUs, DDP across nodes with multi_node.yaml; one launcher per node.
#   sbatch recipes/accelerate_configs/slurm.sh                      # from the repo root
#   sbatch --nodes 4 recipes/accelerate_configs/slurm.sh --learning_rate 3e-4  # extra args reach the recipe
# Each node runs:
#   accelerate launch --config_file recipes/accelerate_configs/multi_node.yaml --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) --machine_rank $SLURM_NODEID --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT -m recipes.pretrain_mlm --config recipes/configs/roberta-base.yaml
# The command line overrides the YAML's node count, rank and address, so only the #SBATCH lines
# change with the cluster. Global batch = per_device_train_batch_size x
# gradient_accumulation_steps x SLURM_NNODES x GPUS_PER_NODE.
#SBATCH --job-name=pretrain-mlm
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.out

set -euo pipefail

export GPUS_PER_NODE=8  # keep equal to --gres=gpu:N
export CONFIG=${CONFIG:-recipes/configs/roberta-base.yaml}
# The first node of the allocation hosts the rendezvous; every node must reach it on this port.
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR
export MASTER_PORT=${MASTER_PORT:-29500}
# Tokenized datasets are cached under HF_HOME: put it on storage all nodes share.
export HF_HOME=${HF_HOME:-$PWD/.cache/huggingface}

# Single quotes: $SLURM_NODEID must be expanded by each node's task, not by this script.
srun --kill-on-bad-exit=1 bash -c '
accelerate launch \
  --config_file recipes/accelerate_configs/multi_node.yaml \
  --num_machines "$SLURM_NNODES" \
  --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
  --machine_rank "$SLURM_NODEID" \
  --main_process_ip "$MASTER_ADDR" \
  --main_process_port "$MASTER_PORT" \
  -m recipes.pretrain_mlm --config "$CONFIG" "$@"
' slurm-launch "$@"
