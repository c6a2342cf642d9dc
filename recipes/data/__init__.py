"""Datasets and everything between raw text and a batch: text files and Hub datasets, packing,
masking, NSP pairs, stream positions, labelled data, the tokenizer."""
