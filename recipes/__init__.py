"""Pretraining recipes for BERT and RoBERTa on the Hugging Face stack."""
