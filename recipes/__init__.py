"""Pretraining recipes for ModernBERT, RoBERTa and BERT on the Hugging Face stack.

Entry scripts (`python -m recipes.<name>`) sit here; the library they share is split by concern:
models/ (families, checkpoints, the sparse head), data/ (text, masking, NSP pairs, labelled data),
runs/ (start, finish, card, Hub, metrics, plots), finetune/ (the pretrained-vs-random comparison),
tasks/ (builders that write data/<name>). Settings: arguments.py; parsing them: config.py.
"""
