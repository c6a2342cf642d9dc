"""Models: the family records, where a pretraining run starts (from scratch or a checkpoint),
loading checkpoints, the sparse masked-LM head, FSDP, and the hand-written BERT."""
