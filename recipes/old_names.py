"""Names people bring from older transformers and from run_mlm.py, and what each means here: read
under our name with a note, or refused with the equivalent (recipes/config.py applies them)."""

# Keys users carry over from older transformers, and what to use instead.
RENAMED_KEYS = {
    "evaluation_strategy": "eval_strategy",
    "warmup_ratio": "warmup_steps (a float below 1 is read as a ratio)",
    "no_cuda": "use_cpu",
    "logging_dir": "the TENSORBOARD_LOGGING_DIR environment variable",
    "max_position_embedding": "max_position_embeddings (it is derived from max_seq_length)",
    "per_gpu_train_batch_size": "per_device_train_batch_size",
    "per_gpu_eval_batch_size": "per_device_eval_batch_size",
}

# run_mlm.py's flags (transformers' examples/pytorch/language-modeling) that mean the same here
# under another name: read as ours, with a note.
RUN_MLM_ALIASES = {
    "train_file": "train_files",
    "validation_file": "validation_files",
    "tokenizer_name": "tokenizer_name_or_path",
}

# run_mlm.py's flags that have no field here, and what does their job.
RUN_MLM_EQUIVALENTS = {
    "config_overrides": "set each model key as its own flag or YAML key, e.g. `--hidden_size "
    "256 --num_hidden_layers 4` (every field of the family's config class is one; --help lists "
    "them)",
    "config_name": "the model config is built from model_type and the model keys "
    "(`--hidden_size 256`, ...), or read from model_name_or_path's checkpoint",
    "max_train_samples": "pretraining stops after `--max_steps N` optimizer steps (or train on "
    "fewer train_files)",
    "max_eval_samples": "the held-out share is `--validation_split_percentage` (or give "
    "`--validation_files`)",
    "cache_dir": "set the HF_HOME environment variable (models and datasets are cached under it)",
    "use_fast_tokenizer": "tokenizers are always the fast kind (the tokenizers library): drop it",
    "model_revision": "download that revision (`hf download ID --revision REV --local-dir DIR`) "
    "and set `--model_name_or_path DIR`",
    "token": "set the HF_TOKEN environment variable (or run `hf auth login`)",
    "trust_remote_code": "no model or dataset code is run from the Hub here: models are "
    "transformers' own classes, and datasets 4+ loads no dataset scripts",
    "low_cpu_mem_usage": "drop it: a model is built from scratch or loaded from safetensors",
    "model_type": "drop it: the model's family is its checkpoint's (the pretraining recipes take "
    "`model_type`; their --help lists the families)",
}

# run_mlm.py's flags that ask for what the recipes do anyway: read, noted in one line, dropped;
# with the value that would ask for something else (`do_train false`), refused with the reason.
RUN_MLM_NOOPS = {
    "do_train": "the recipe always trains",
    "do_eval": "the recipe always evaluates on its held-out split (eval_strategy and eval_steps "
    "say how often during training)",
    "overwrite_cache": "the tokenized data is cached under a fingerprint of the files, the "
    "tokenizer and the settings, so any change re-tokenizes by itself (to start afresh, delete "
    "the datasets cache: HF_DATASETS_CACHE, by default ~/.cache/huggingface/datasets)",
    "pad_to_max_length": "text is packed into full max_seq_length blocks, so nothing is padded; "
    "`--line_by_line true` keeps one example per line, each batch padded to its longest line "
    "(a multiple of 8), which trains the same as padding every line to max_seq_length",
}
NOOP_REFUSED = {
    ("do_train", False): "the recipes exist to train; to only evaluate a model, fine-tune it "
    "(python -m recipes.finetune_classification) or try it (python -m recipes.fill_mask)",
    ("do_eval", False): "the recipe always evaluates the final model on its held-out split; "
    "`eval_strategy: no` skips the evaluations during training",
}

# TrainingArguments fields that Trainer leaves to the script and that the recipes refuse.
DO_FLAGS = {
    "do_predict": "the recipes evaluate on their held-out (fine-tuning: and test) data by "
    "themselves: drop it",
}
