# GPU image for the recipes: CUDA PyTorch from the base image plus requirements.txt.
#   docker build -t bert-from-scratch .
#   docker run --gpus all --ipc=host -e HF_TOKEN -v "$PWD/data:/workspace/data" \
#     -v "$PWD/outputs:/workspace/outputs" -v "$HOME/.cache/huggingface:/root/.cache/huggingface" \
#     bert-from-scratch accelerate launch --config_file recipes/accelerate_configs/ddp.yaml \
#     -m recipes.pretrain_mlm --config recipes/configs/roberta-base.yaml
# data/ (the corpus) and outputs/ (the tokenizer, then the model) are mounted: .dockerignore
# keeps both out of the image. --ipc=host: DataLoader workers share memory through /dev/shm, which Docker caps at 64 MB.
# The token comes in at run time (-e HF_TOKEN); it is never baked into the image.

# torch 2.13.0 matches the pin in requirements.txt; this build is the CUDA 12.6 one.
FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /workspace

# Requirements before the code, so editing code does not reinstall packages. torch (and the CPU
# wheel index, if listed) is filtered out: pip would otherwise swap the image's CUDA build for
# a CPU one.
COPY requirements.txt .
RUN grep -vE '^[[:space:]]*torch[[:space:]]*([=<>!~;[]|$)' requirements.txt \
    | grep -v 'download.pytorch.org' > /tmp/requirements-docker.txt
RUN pip install --no-cache-dir -r /tmp/requirements-docker.txt

COPY . .
# The project as a package (pyproject.toml; its dependencies are in already): `python -m
# recipes.<name>` from any working directory, e.g. a mounted one.
RUN pip install --no-cache-dir --no-deps -e .

CMD ["python", "-c", "print('Launch a recipe with accelerate, e.g.:\\n  accelerate launch --config_file recipes/accelerate_configs/single_gpu.yaml -m recipes.pretrain_mlm --config recipes/configs/roberta-base.yaml\\n  accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m recipes.pretrain_mlm --config recipes/configs/roberta-base.yaml\\nOther hardware layouts: ls recipes/accelerate_configs/')"]
