"""Models: the family records, checkpoints to start from, the sparse masked-LM head, FSDP, and
the hand-written BERT."""
